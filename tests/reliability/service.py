"""The service as its own process for the fault and crash tests: its settings, the bounds
derived from its timeouts, and its output scanned for tracebacks and 503 reasons."""

from __future__ import annotations

import asyncio
import re
import subprocess
import threading
from collections import Counter, deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from app.config import DEFAULT_RATE_LIMITS, DatabaseConfig
from tests.processes import BOUND, start_server, wait_ready

DEFAULTS = DatabaseConfig(url="")  # the timeouts the environment cannot change
LOCK_TIMEOUT = DEFAULTS.lock_timeout_ms / 1000
DB_PHASES = 3  # a reveal takes a connection three times: rate count, peek, consume
SLACK = 2.0  # seconds on top of every derived bound: a loaded 2-core machine
RECOVERY_BOUND = 5.0  # seconds after a fault by which a request must succeed again
UNLIMITED = ",".join(f"{event}={10**9}" for event, _ in DEFAULT_RATE_LIMITS)
UNAVAILABLE_LOG = re.compile(r"database unavailable: (\w+)")


def request_bound(acquire_timeout: float) -> float:
    """Longest a request may take: each phase waits at most for a connection and then
    for its statements (asyncpg's command_timeout)."""
    return DB_PHASES * (acquire_timeout + DEFAULTS.command_timeout) + SLACK


def service_env(pool_max: int, acquire_timeout: float) -> dict[str, str]:
    return {
        "OTS_RATE_LIMITS": UNLIMITED,  # one client address makes all the load
        "OTS_DB_POOL_MAX": str(pool_max),
        "OTS_DB_ACQUIRE_TIMEOUT": str(acquire_timeout),
        "OTS_EXPIRY_INTERVAL": "3600",  # the sweeper stays out of the way
        "OTS_LOG_LEVEL": "WARNING",  # the reasons for 503s and any traceback, not every request
    }


class Service:
    """The service as its own process. Its output is drained as it comes (a full pipe
    would stall it) and scanned for tracebacks and for the reasons given for 503s."""

    def __init__(self, database_url: str, env: dict[str, str], tail_lines: int = 60) -> None:
        self.database_url, self.env = database_url, env
        self.base = ""
        self.unhandled = 0  # 500s, by the error middleware's own account
        self.errors = 0  # every ERROR line, whoever logged it
        self.unavailable: Counter[str] = Counter()
        self.tail: deque[str] = deque(maxlen=tail_lines)
        self._proc: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None

    async def start(self) -> None:
        base, self._proc = start_server(self.database_url, **self.env)
        self._reader = threading.Thread(target=self._drain, args=(self._proc,), daemon=True)
        self._reader.start()
        await asyncio.wait_for(wait_ready(base), 2 * BOUND)
        self.base = base  # clients knock at the old address until the new one is up

    def kill(self) -> None:
        """SIGKILL: no draining, no cleanup, like an OOM kill or a lost node."""
        if self._proc is not None and self._reader is not None:
            self._proc.kill()
            self._proc.wait(timeout=BOUND)
            self._reader.join(timeout=BOUND)
            if self._proc.stdout is not None:
                self._proc.stdout.close()

    def log(self) -> str:
        return "\n".join(self.tail)

    def _drain(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self.tail.append(line.rstrip())
            self.unhandled += "unhandled error" in line
            self.errors += " ERROR " in line or " CRITICAL " in line
            if found := UNAVAILABLE_LOG.search(line):
                self.unavailable[found[1]] += 1


@asynccontextmanager
async def running(database_url: str, env: dict[str, str]) -> AsyncIterator[Service]:
    service = Service(database_url, env)
    try:
        await service.start()
        yield service
    finally:
        service.kill()
