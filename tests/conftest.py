"""Fixtures: one real PostgreSQL per session, migrated by alembic, truncated after each test."""

from __future__ import annotations

import asyncio
import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

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


@pytest.fixture(scope="session")
def database_url(server_url: str) -> Iterator[str]:
    """A fresh database, built by the real migrations (never create_all)."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(server_url, f'CREATE DATABASE "{name}"'))
    url = _with_database(server_url, name)
    migrate.upgrade(url)
    yield url
    asyncio.run(_admin(server_url, f'DROP DATABASE "{name}" WITH (FORCE)'))


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        database=DatabaseConfig(url=database_url, pool_max=10),
        keys=crypto.parse_keyring(TEST_KEYS),
        base_url="https://ots.example",
        expiry_interval=3600,  # tests call the sweeper themselves
    )


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A direct connection for arranging and inspecting rows; tables are emptied afterwards."""
    conn = await asyncpg.connect(database_url)
    try:
        yield conn
    finally:
        await conn.execute("TRUNCATE receipts, secrets, passphrase_attempts, passphrase_lockouts")
        await conn.close()


@pytest.fixture
async def client(
    aiohttp_client: object, settings: Settings, db: asyncpg.Connection
) -> TestClient[web.Request, web.Application]:
    make = aiohttp_client
    return await make(create_app(settings))  # type: ignore[operator, no-any-return]  # untyped fixture


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
