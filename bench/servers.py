"""The systems under test, each started on a free loopback port and stopped after:
the service, the HTTP ceiling, and SnapPass with its Redis."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from app import crypto
from app.config import DEFAULT_RATE_LIMITS
from bench import procs
from bench.pg import Database

ROOT = Path(__file__).resolve().parent.parent
SNAPPASS_VENV = ROOT / "bench" / ".venv-snappass"
SNAPPASS_PACKAGES = ("snappass==1.6.2", "gunicorn>=23")
# SnapPass is a sync Flask app: one gunicorn process (as ours is one process) with
# threads, so Redis round trips overlap as asyncpg's do.
SNAPPASS_THREADS = 32
HUGE_LIMIT = 2_000_000_000  # rate_counters.hits is a 32-bit integer


@dataclass(frozen=True)
class Server:
    name: str
    url: str
    app_pids: tuple[int, ...]  # process trees whose CPU is the app's
    db_pids: tuple[int, ...]  # ... and the data store's (PostgreSQL, Redis)


def service_env(db: Database, port: int, **extra: str) -> dict[str, str]:
    """The service's configuration: encryption and the audit trail are always on;
    rate limits stay in force but out of reach (each request is still counted)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTS_", "DATABASE_URL"))}
    limits = ",".join(f"{event}={HUGE_LIMIT}" for event, _ in DEFAULT_RATE_LIMITS)
    return {
        **env,
        "DATABASE_URL": db.url,
        "OTS_KEYS": crypto.generate_keyring_text(),
        "OTS_HOST": "127.0.0.1",
        "OTS_PORT": str(port),
        "OTS_RATE_LIMITS": limits,
        **extra,
    }


@contextlib.contextmanager
def service(db: Database, logs: Path, **extra: str) -> Iterator[Server]:
    """`python -m app serve`: one process, as in production."""
    port = procs.free_port()
    cmd = [sys.executable, "-m", "app", "serve"]
    proc = procs.start(cmd, logs / "service.log", service_env(db, port, **extra), cwd=ROOT)
    db_pids = (db.postmaster,) if db.postmaster else ()
    yield from _serving(Server("ours", f"http://127.0.0.1:{port}", (proc.pid,), db_pids), proc)


@contextlib.contextmanager
def ceiling(logs: Path) -> Iterator[Server]:
    port = procs.free_port()
    cmd = [sys.executable, "-m", "bench.ceiling", "--port", str(port)]
    proc = procs.start(cmd, logs / "ceiling.log", cwd=ROOT)
    yield from _serving(Server("http", f"http://127.0.0.1:{port}", (proc.pid,), ()), proc)


@contextlib.contextmanager
def snappass(logs: Path, work: Path) -> Iterator[Server]:
    """SnapPass under gunicorn, with Debian's redis-server on its own port and directory."""
    bin_dir = snappass_venv()
    redis_port, port = procs.free_port(), procs.free_port()
    (work / "redis").mkdir(parents=True, exist_ok=True)
    redis_cmd = [procs.tool("redis-server"), "--bind", "127.0.0.1", "--port", str(redis_port)]
    redis = procs.start([*redis_cmd, "--dir", str(work / "redis")], logs / "redis.log")
    env = {**os.environ, "REDIS_HOST": "127.0.0.1", "REDIS_PORT": str(redis_port), "NO_SSL": "1"}
    gunicorn = [str(bin_dir / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", "1"]
    threads = ["--worker-class", "gthread", "--threads", str(SNAPPASS_THREADS)]
    proc = procs.start([*gunicorn, *threads, "snappass.main:app"], logs / "snappass.log", env)
    server = Server("snappass", f"http://127.0.0.1:{port}", (proc.pid,), (redis.pid,))
    try:
        yield from _serving(server, proc)
    finally:
        procs.stop(redis)


def _serving(server: Server, proc: subprocess.Popen[bytes]) -> Iterator[Server]:
    try:
        procs.wait_http(f"{server.url}/healthz" if server.name != "snappass" else server.url)
        yield server
    finally:
        procs.stop(proc)


def snappass_venv() -> Path:
    """bench/.venv-snappass, made once: SnapPass's Flask stack stays out of .venv."""
    bin_dir = SNAPPASS_VENV / "bin"
    if not (bin_dir / "gunicorn").exists():
        procs.run([sys.executable, "-m", "venv", str(SNAPPASS_VENV)])
        procs.run([str(bin_dir / "pip"), "install", "-q", *SNAPPASS_PACKAGES])
    return bin_dir
