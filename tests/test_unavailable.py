"""A database that is away, saturated or locked gives 503 with Retry-After, never a hang or 500."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from dataclasses import replace

import asyncpg
import pytest
from pytest_aiohttp import AiohttpClient

from app.config import DatabaseConfig, Settings
from app.keys import SERVICES
from app.server import create_app
from app.store.db import Store, quiet_dead_connection_closes
from tests.conftest import make_settings
from tests.factories import V2, Client, conceal, reveal
from tests.severing import severing_proxy, through

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


async def test_connections_severed_unnoticed(
    aiohttp_client: AiohttpClient, settings: Settings, db: asyncpg.Connection
) -> None:
    """After a failover every pooled connection is dead, but the driver finds that out
    only when it uses one. The first request to find one gets its 503; the pool must then
    replace the rest, not let each of the next requests find one of them."""
    async with severing_proxy(db) as proxy:
        database = replace(settings.database, url=through(settings.database.url, proxy.port))
        client: Client = await aiohttp_client(
            create_app(make_settings(settings, database=database))
        )
        store = client.app[SERVICES].store
        await asyncio.gather(*(_use_a_connection(store) for _ in range(6)))  # six open
        assert proxy.sever() >= 6
        first = await client.post(f"{V2}/secret/conceal", json={"secret": {"secret": "x"}})
        assert first.status == 503
        # Six at once need six connections: every one must be a new one.
        await asyncio.wait_for(asyncio.gather(*(_use_a_connection(store) for _ in range(6))), BOUND)
        assert (await conceal(client, "after")).secret_key
        await client.close()  # while the proxy still stands: the pool closes its connections


async def _use_a_connection(store: Store) -> None:
    """Holds a pooled connection for a moment, so concurrent calls each need their own."""
    async with store.connection() as conn:
        await conn.execute("SELECT pg_sleep(0.05)")


class Connection:  # named as asyncpg's: its close() is what the pool leaves unawaited
    async def close(self) -> None:
        raise BrokenPipeError(32, "Broken pipe")


async def _other_close() -> None:
    raise BrokenPipeError(32, "Broken pipe")


async def test_a_dead_connections_close_is_a_warning_and_nothing_else_is_hidden(
    caplog: pytest.LogCaptureFixture,
) -> None:
    loop = asyncio.get_running_loop()
    seen: list[dict[str, object]] = []
    loop.set_exception_handler(lambda _loop, context: seen.append(context))
    try:
        quiet_dead_connection_closes(loop)
        for failing in (Connection().close(), _other_close()):
            task = loop.create_task(failing)
            await asyncio.wait([task])
            loop.call_exception_handler(
                {
                    "message": "Task exception was never retrieved",
                    "exception": task.exception(),
                    "future": task,
                }
            )
    finally:
        loop.set_exception_handler(None)
    assert "closing a dead pooled connection failed: BrokenPipeError" in caplog.text
    reported = [context["future"] for context in seen]
    names = [
        getattr(t.get_coro(), "__qualname__", "") for t in reported if isinstance(t, asyncio.Task)
    ]
    assert names == ["_other_close"]


async def test_a_deadlock_is_a_503_not_a_500(
    aiohttp_client: AiohttpClient, settings: Settings, db: asyncpg.Connection
) -> None:
    """A wrong passphrase's settle locks its attempt row, then a chain head. Another
    transaction holding every head and then asking for that attempt row closes a cycle;
    PostgreSQL rolls back the one that waited first, the request's: nothing was done,
    and a retry would go through, so the client is told to retry (lock_timeout is set
    above deadlock_timeout, so it is the deadlock and not the timeout that ends it)."""
    database = replace(settings.database, lock_timeout_ms=5000)
    client: Client = await aiohttp_client(create_app(make_settings(settings, database=database)))
    pair = await conceal(client, "kept", passphrase="correct-horse-1")
    async with db.transaction():
        await db.execute("SELECT 1 FROM audit_heads FOR UPDATE")
        guessing = asyncio.ensure_future(
            client.post(
                f"{V2}/secret/{pair.secret_key}/reveal",
                json={"continue": True, "passphrase": "wrong-pass-1"},
            )
        )
        await asyncio.wait_for(_an_ots_backend_waits_on_a_lock(db), BOUND)
        with contextlib.suppress(asyncpg.DeadlockDetectedError):
            await asyncio.wait_for(
                db.execute("SELECT 1 FROM passphrase_attempts FOR UPDATE"), BOUND
            )
    response = await asyncio.wait_for(guessing, BOUND)
    body = await response.json()
    assert response.status == 503, body
    assert int(response.headers["Retry-After"]) > 0
    status, body = await reveal(client, pair.secret_key, passphrase="correct-horse-1")
    assert (status, body["record"]["secret_value"]) == (200, "kept")


async def _an_ots_backend_waits_on_a_lock(db: asyncpg.Connection) -> None:
    waiting = (
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'ots'"
        " AND wait_event_type = 'Lock'"
    )
    for _ in range(int(BOUND / 0.02)):
        if await db.fetchval(waiting):
            return
        await asyncio.sleep(0.02)
    raise AssertionError("no backend of the service came to wait on a lock")
