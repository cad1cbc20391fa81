"""Child processes of the harness and what they cost: CPU seconds and RSS from /proc."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def tool(name: str, *candidates: Path) -> str:
    """The full path of a program: the first candidate that exists, else from PATH."""
    for path in candidates:
        if path.is_file():
            return str(path)
    found = shutil.which(name)
    if found is None:
        raise SystemExit(f"bench: {name} not found (make bench installs it)")
    return found


def start(
    cmd: list[str], log: Path, env: Mapping[str, str] | None = None, cwd: Path | None = None
) -> subprocess.Popen[bytes]:
    """A server in the background, its output appended to `log`."""
    out: IO[bytes] = log.open("ab")
    return subprocess.Popen(  # noqa: S603  # our own tools, full paths, no shell
        cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd
    )


def run(
    cmd: list[str],
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 900,
) -> str:
    """A tool to completion; its standard output (stderr too, for the error message)."""
    done = subprocess.run(  # noqa: S603  # our own tools, full paths, no shell
        cmd, capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{Path(cmd[0]).name} exited {done.returncode}: {done.stderr[-2000:]}")
    return done.stdout


def stop(proc: subprocess.Popen[bytes], grace: float = 20) -> None:
    """SIGTERM (the servers drain on it), then SIGKILL if it lingers."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(grace)


def wait_http(url: str, seconds: float = 60) -> None:
    """Until `url` answers at all (any status), or give up."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310  # our own loopback URL
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {seconds:.0f} s")


def _stat(pid: int) -> list[str]:
    """Fields of /proc/PID/stat after the command name (field 3 onwards)."""
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2 :].split()


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int(_stat(int(entry.name))[1])
            except (OSError, IndexError, ValueError):
                continue  # gone meanwhile
            tree.setdefault(parent, []).append(int(entry.name))
    return tree


def descendants(root: int) -> list[int]:
    tree, found, todo = _children(), [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(tree.get(pid, []))
    return found


def cpu_seconds(roots: Iterable[int]) -> float:
    """User + system CPU of each root's whole process tree so far.

    A root's cutime/cstime hold the children it has already reaped (PostgreSQL backends
    that ended), the live descendants are summed directly, so a difference of two
    readings is the tree's CPU in between even when backends come and go.
    """
    total = 0
    for root in roots:
        for pid in descendants(root):
            try:
                fields = _stat(pid)
            except OSError:
                continue
            # utime, stime (fields 14, 15); the root also cutime, cstime (16, 17).
            total += sum(int(f) for f in fields[11 : 15 if pid == root else 13])
    return total / CLOCK_TICKS


def rss_mb(roots: Iterable[int]) -> float:
    """Resident memory of these process trees, in MiB."""
    total = 0
    for pid in (pid for root in roots for pid in descendants(root)):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total / 1024


@dataclass
class CpuMeter:
    """CPU of some process trees over one measured run."""

    roots: tuple[int, ...]
    used: float = 0.0

    def __enter__(self) -> CpuMeter:
        self.used = -cpu_seconds(self.roots)
        return self

    def __exit__(self, *exc: object) -> None:
        self.used += cpu_seconds(self.roots)
