"""Driving a server with wrk (its own process, not the server's event loop) and a Lua
script from bench/wrk/, and reading what it measured."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from bench import procs
from bench.results import Run
from bench.servers import Server

LUA = Path(__file__).resolve().parent / "wrk"
THREADS = 2  # one per core; wrk shares the machine with the servers
TIMEOUT = "30s"  # passphrase loads queue for seconds at 256 connections: slow, not failed


@dataclass(frozen=True)
class Workload:
    """A Lua script from bench/wrk/ and its BENCH_* settings."""

    name: str
    script: str
    path: str = "/"
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class Running:
    """A wrk run in the background, with CPU meters started alongside."""

    server: Server
    work: Workload
    concurrency: int
    rep: int
    proc: subprocess.Popen[str]
    app_cpu: float
    db_cpu: float

    def finish(self, interrupt: bool = False) -> Run:
        """Wait for wrk (or stop it now: on SIGINT it still prints its summary)."""
        if interrupt:
            self.proc.send_signal(signal.SIGINT)
        out, err = self.proc.communicate()
        app = procs.cpu_seconds(self.server.app_pids) - self.app_cpu
        db = procs.cpu_seconds(self.server.db_pids) - self.db_cpu
        if self.proc.returncode not in (0, -signal.SIGINT):
            raise RuntimeError(f"wrk exited {self.proc.returncode}: {err[-2000:]}")
        return self.measured(summary(out), app, db)

    def measured(self, s: dict[str, float], app: float, db: float) -> Run:
        requests = int(s["requests"])
        errors = sum(int(s[k]) for k in ("connect_errors", "read_errors", "write_errors"))
        errors += int(s["status_errors"] + s["timeouts"])
        if self.work.script == "lifecycle":
            chained(requests, int(s["lifecycles_finished"]), errors, self.concurrency)
        return Run(
            system=self.server.name,
            workload=self.work.name,
            concurrency=self.concurrency,
            rep=self.rep,
            requests=requests,
            seconds=s["duration_us"] / 1e6,
            p50_ms=s["p50_us"] / 1e3,
            p99_ms=s["p99_us"] / 1e3,
            errors=errors,
            app_cpu=app / max(requests, 1),
            db_cpu=db / max(requests, 1),
            rss_mb=procs.rss_mb(self.server.app_pids),
            note="keys ran out" if s["exhausted_threads"] else "",
        )


def start(
    server: Server, work: Workload, concurrency: int, seconds: float, rep: int = 0
) -> Running:
    threads = min(THREADS, concurrency)
    cmd = [
        procs.tool("wrk"),
        "-t",
        str(threads),
        "-c",
        str(concurrency),
        "-d",
        f"{max(round(seconds), 1)}s",
    ]
    cmd += ["--timeout", TIMEOUT, "-s", f"{work.script}.lua", server.url + work.path]
    env = {**os.environ, "BENCH_THREADS": str(threads), **work.env}
    app, db = procs.cpu_seconds(server.app_pids), procs.cpu_seconds(server.db_pids)
    proc = subprocess.Popen(  # noqa: S603  # wrk from PATH, resolved to a full path
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=LUA
    )
    return Running(server, work, concurrency, rep, proc, app, db)


def run(server: Server, work: Workload, concurrency: int, seconds: float, rep: int = 0) -> Run:
    """One measured run: wrk's numbers plus the CPU the server side used meanwhile."""
    return start(server, work, concurrency, seconds, rep).finish()


def chained(requests: int, finished: int, errors: int, concurrency: int) -> None:
    """A lifecycle run is lifecycles: its requests are three a finished one, but for those
    open when it stopped (up to a lifecycle a connection, two of its steps sent) and those
    an error cut short. Otherwise the script lost its chain and measured something else:
    from 7f8b0e2 to this check, a body's new spacing left it making conceals only."""
    unchained = requests - 3 * finished
    if unchained > 3 * (concurrency + errors):
        raise RuntimeError(
            f"lifecycle: {requests} requests but {finished} lifecycles finished; "
            "the script no longer follows the service's responses"
        )


def summary(output: str) -> dict[str, float]:
    """The BENCH_JSON line common.lua prints in done()."""
    for line in output.splitlines():
        if line.startswith("BENCH_JSON "):
            data: dict[str, float] = json.loads(line.removeprefix("BENCH_JSON "))
            return data
    raise RuntimeError(f"wrk printed no summary:\n{output[-2000:]}")
