"""Fixtures: one real PostgreSQL per session, migrated by alembic, truncated after each test."""

from __future__ import annotations

import asyncio
import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from app import crypto, embedded, migrate
from app.config import DatabaseConfig, Settings
from app.server import create_app
from tests.factories import TEST_KEYS


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    """DATABASE_URL's server, or a throwaway embedded PostgreSQL."""
    given = os.environ.get("DATABASE_URL")
    if given:
        yield given
        return
    with tempfile.TemporaryDirectory(prefix="ots-test-") as tmp:
        server = embedded.start(Path(tmp) / "pg", delete_on_exit=True)
        yield server.get_uri("postgres")


@contextmanager
def throwaway_database(server_url: str, prefix: str, *, migrated: bool = True) -> Iterator[str]:
    """A new database on the test server, built by the real migrations (never create_all)
    unless `migrated` is off; dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(server_url, f'CREATE DATABASE "{name}"'))
    try:
        url = _with_database(server_url, name)
        if migrated:
            migrate.upgrade(url)
        yield url
    finally:
        asyncio.run(_admin(server_url, f'DROP DATABASE "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def database_url(server_url: str) -> Iterator[str]:
    """The session's database; tests empty its tables after themselves."""
    with throwaway_database(server_url, "test") as url:
        yield url


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        database=DatabaseConfig(url=database_url, pool_max=10),
        keys=crypto.parse_keyring(TEST_KEYS),
        base_url="https://ots.example",
        expiry_interval=3600,  # tests call the sweeper themselves
    )


TRUNCATE = (
    "TRUNCATE receipts, secrets, passphrase_attempts, passphrase_lockouts, customers,"
    " rate_counters, notifications"
)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A direct connection for arranging and inspecting rows; tables are emptied afterwards."""
    conn = await asyncpg.connect(database_url)
    try:
        yield conn
    finally:
        await _truncate(conn)
        await conn.close()


async def _truncate(conn: asyncpg.Connection) -> None:
    """A test's own app (and its sweeper) may still be running: if the sweeper's row locks
    and TRUNCATE's table locks deadlock and PostgreSQL picks us, try again."""
    for _ in range(5):
        try:
            await conn.execute(TRUNCATE)
            return
        except asyncpg.DeadlockDetectedError:
            await asyncio.sleep(0.1)
    await conn.execute(TRUNCATE)


@pytest.fixture
async def client(
    db: asyncpg.Connection, aiohttp_client: AiohttpClient, settings: Settings
) -> TestClient[web.Request, web.Application]:
    """The real app with its sweeper; `db` comes first so the server stops before the
    tables are emptied."""
    return await aiohttp_client(create_app(settings))


def make_settings(settings: Settings, **changes: object) -> Settings:
    return replace(settings, **changes)  # type: ignore[arg-type]  # dataclass fields vary


def _with_database(url: str, name: str) -> str:
    """Swap the database name in a postgresql:// URL (keeping ?host=... for sockets)."""
    head, _, query = url.partition("?")
    base = head.rsplit("/", 1)[0]
    return f"{base}/{name}" + (f"?{query}" if query else "")


async def _admin(url: str, statement: str) -> None:
    conn = await asyncpg.connect(url, timeout=10)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()
