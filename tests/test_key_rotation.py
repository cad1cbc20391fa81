"""The key ring: new secrets use the newest key, old ones open until their key is removed."""

from __future__ import annotations

import asyncpg
from pytest_aiohttp import AiohttpClient

from app import crypto
from app.config import Settings
from app.server import create_app
from tests.conftest import make_settings
from tests.factories import SECOND_KEY, TEST_KEYS, Client, conceal, get, reveal


async def _client_with(aiohttp_client: AiohttpClient, settings: Settings, ring: str) -> Client:
    changed = make_settings(settings, keys=crypto.parse_keyring(ring))
    client: Client = await aiohttp_client(create_app(changed))
    return client


async def test_rotation_keeps_old_secrets_readable(
    aiohttp_client: AiohttpClient, settings: Settings, db: asyncpg.Connection
) -> None:
    before = await _client_with(aiohttp_client, settings, TEST_KEYS)
    old = await conceal(before, "sealed under key 1")
    after = await _client_with(aiohttp_client, settings, TEST_KEYS + " " + SECOND_KEY)
    new = await conceal(after, "sealed under key 2")
    assert sorted(r["key_id"] for r in await db.fetch("SELECT key_id FROM secrets")) == [1, 2]
    status, body = await reveal(after, old.secret_key)
    assert (status, body["record"]["secret_value"]) == (200, "sealed under key 1")
    status, body = await reveal(after, new.secret_key)
    assert (status, body["record"]["secret_value"]) == (200, "sealed under key 2")


async def test_retired_key_gives_503_and_consumes_nothing(
    aiohttp_client: AiohttpClient, settings: Settings, db: asyncpg.Connection
) -> None:
    before = await _client_with(aiohttp_client, settings, TEST_KEYS)
    pair = await conceal(before, "kept safe")
    idx = TEST_KEYS.split()[0]
    retired = await _client_with(aiohttp_client, settings, f"{idx} {SECOND_KEY}")
    status, body = await reveal(retired, pair.secret_key)
    assert (status, body["error_type"]) == (503, "ServiceUnavailable")
    status, _ = await get(retired, f"/private/{pair.receipt_key}")
    assert status == 503
    assert await db.fetchval("SELECT count(*) FROM secrets") == 1
    status, body = await reveal(before, pair.secret_key)
    assert (status, body["record"]["secret_value"]) == (200, "kept safe")
