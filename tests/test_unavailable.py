"""A database that is away, saturated or locked gives 503 with Retry-After, never a hang or 500."""

from __future__ import annotations

import asyncio
import socket

import asyncpg
from pytest_aiohttp import AiohttpClient

from app.config import DatabaseConfig, Settings
from app.keys import SERVICES
from app.server import create_app
from tests.conftest import make_settings
from tests.factories import V2, Client, conceal

BOUND = 10  # seconds: far above every configured timeout, so a hang fails the test


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def _expect_503(client: Client, method: str, path: str, json: object = None) -> None:
    response = await asyncio.wait_for(client.request(method, f"{V2}{path}", json=json), BOUND)
    body = await response.json()
    assert response.status == 503, body
    assert int(response.headers["Retry-After"]) > 0
    assert body["success"] is False
    assert body["error_type"] == "ServiceUnavailable"


async def test_unreachable_database(aiohttp_client: AiohttpClient, settings: Settings) -> None:
    url = f"postgresql://postgres@127.0.0.1:{_closed_port()}/nowhere"
    away = make_settings(settings, database=DatabaseConfig(url=url, connect_timeout=1.0))
    client: Client = await aiohttp_client(create_app(away))
    await _expect_503(client, "POST", "/secret/conceal", json={"secret": {"secret": "x"}})
    await _expect_503(client, "GET", "/secret/abc")
    await _expect_503(client, "POST", "/private/abc/burn", json={"continue": True})
    response = await client.get(f"{V2}/status")
    assert response.status == 200  # the process itself is fine


async def test_exhausted_pool(aiohttp_client: AiohttpClient, settings: Settings) -> None:
    small = make_settings(
        settings,
        database=DatabaseConfig(url=settings.database.url, pool_max=1, acquire_timeout=0.3),
    )
    client: Client = await aiohttp_client(create_app(small))
    pool = client.app[SERVICES].store.pool
    async with pool.acquire():
        await _expect_503(client, "POST", "/secret/conceal", json={"secret": {"secret": "x"}})
    pair = await conceal(client, "after")  # recovers without a restart
    assert pair.secret_key


async def test_row_lock_held_elsewhere(client: Client, db: asyncpg.Connection) -> None:
    pair = await conceal(client, "locked")
    async with db.transaction():
        await db.execute("SELECT * FROM secrets FOR UPDATE")
        await _expect_503(
            client, "POST", f"/secret/{pair.secret_key}/reveal", json={"continue": True}
        )
    response = await client.post(f"{V2}/secret/{pair.secret_key}/reveal", json={"continue": True})
    body = await response.json()
    assert body["record"]["secret_value"] == "locked"  # the timed-out attempt consumed nothing


async def test_connection_killed_mid_session(client: Client, db: asyncpg.Connection) -> None:
    await conceal(client, "warm the pool")
    await db.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE application_name = 'ots' AND pid <> pg_backend_pid()"
    )
    statuses = []
    for _ in range(3):
        response = await client.post(f"{V2}/secret/conceal", json={"secret": {"secret": "x"}})
        statuses.append(response.status)
    assert set(statuses) <= {200, 503}
    assert statuses[-1] == 200
