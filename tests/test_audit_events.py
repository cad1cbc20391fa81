"""Every action writes its audit event, in the same transaction as the change."""

from __future__ import annotations

import base64
from typing import Any

import asyncpg
import pytest
from pytest_aiohttp import AiohttpClient

from app import crypto
from app.audit_commands import retire_key
from app.config import DEFAULT_RATE_LIMITS, RateLimits, Settings
from app.core.accounts import add_customer, disable_customer, rotate_token
from app.core.errors import InvalidRequest
from app.expiry import sweep
from app.keys import SERVICES
from app.server import create_app
from tests.conftest import make_settings
from tests.factories import V2, Client, burn, conceal, early_in_a_rate_window, generate, reveal

RIGHT = "correct-horse-1"


async def _events(db: asyncpg.Connection, ref: bytes | None = None) -> list[dict[str, Any]]:
    rows = await db.fetch(
        "SELECT * FROM audit_events WHERE receipt_ref IS NOT DISTINCT FROM $1 ORDER BY id", ref
    )
    return [dict(row) for row in rows]


def _ref(client: Client, receipt_key: str) -> bytes:
    return crypto.lookup_id(client.app[SERVICES].keys, receipt_key)


async def test_lifecycle_events_carry_who_what_where(
    client: Client, db: asyncpg.Connection
) -> None:
    headers = {"User-Agent": "audit-test/1.0", "X-Request-ID": "req-123"}
    response = await client.post(
        f"{V2}/secret/conceal", json={"secret": {"secret": "x"}}, headers=headers
    )
    assert response.headers["X-Request-ID"] == "req-123"
    receipt_key = (await response.json())["record"]["metadata"]["key"]
    secret_key = (await response.json())["record"]["secret"]["key"]
    await client.get(f"{V2}/secret/{secret_key}")
    await client.get(f"{V2}/private/{receipt_key}")
    await reveal(client, secret_key)
    events = await _events(db, _ref(client, receipt_key))
    assert [e["event"] for e in events] == [
        "secret.created",
        "secret.viewed",
        "receipt.viewed",
        "secret.revealed",
    ]
    created = events[0]
    assert (created["actor"], created["outcome"], created["detail"]) == (
        "anonymous",
        "success",
        "conceal",
    )
    assert created["client_ip"] == "127.0.0.1"
    assert created["user_agent"] == "audit-test/1.0"
    assert created["request_id"] == "req-123"
    assert len({e["request_id"] for e in events}) == 4  # generated ids for the others


async def test_burn_generate_and_expiry_events(client: Client, db: asyncpg.Connection) -> None:
    burned = await conceal(client, "x")
    await burn(client, burned.receipt_key)
    generated = await generate(client)
    expired = await conceal(client, "y")
    await db.execute("UPDATE secrets SET expires_at = now() - interval '1 second'")
    svc = client.app[SERVICES]
    await sweep(svc, batch=10)
    assert [e["event"] for e in await _events(db, _ref(client, burned.receipt_key))] == [
        "secret.created",
        "secret.burned",
    ]
    assert (await _events(db, _ref(client, generated.receipt_key)))[0]["detail"] == "generate"
    last = (await _events(db, _ref(client, expired.receipt_key)))[-1]
    assert (last["event"], last["actor"], last["client_ip"]) == ("secret.expired", "system", None)


async def test_passphrase_failures_and_lockout(client: Client, db: asyncpg.Connection) -> None:
    pair = await conceal(client, "x", passphrase=RIGHT)
    for _ in range(6):
        await reveal(client, pair.secret_key, passphrase="wrong-guess-1")
    events = [e["event"] for e in await _events(db, _ref(client, pair.receipt_key))]
    assert events == ["secret.created"] + ["passphrase.failed"] * 5 + ["passphrase.lockout"]


async def test_auth_failure_and_token_events(client: Client, db: asyncpg.Connection) -> None:
    svc = client.app[SERVICES]
    token = await add_customer(svc, "ops@example.com", "basic")
    await rotate_token(svc, "ops@example.com")
    await disable_customer(svc, "ops@example.com")
    basic = base64.b64encode(f"ops@example.com:{token}".encode()).decode()
    response = await client.get(f"{V2}/private/recent", headers={"Authorization": f"Basic {basic}"})
    assert response.status == 401
    rows = await db.fetch(
        "SELECT event, actor, detail FROM audit_events WHERE event LIKE 'token.%' "
        "OR event = 'auth.failed' ORDER BY id DESC LIMIT 4"
    )
    assert [tuple(r) for r in reversed(rows)] == [
        ("token.created", "operator", "ops@example.com"),
        ("token.rotated", "operator", "ops@example.com"),
        ("token.disabled", "operator", "ops@example.com"),
        ("auth.failed", "anonymous", "ops@example.com"),
    ]
    assert not await db.fetchval(
        "SELECT count(*) FROM audit_events WHERE position($1 in coalesce(detail, '')) > 0", token
    )


async def test_rate_limited_is_recorded_once_per_window(
    db: asyncpg.Connection, aiohttp_client: AiohttpClient, settings: Settings
) -> None:
    limits = dict(DEFAULT_RATE_LIMITS) | {"show_secret": 1}
    rate_limits = RateLimits(60, tuple(limits.items()))
    client = await aiohttp_client(create_app(make_settings(settings, rate_limits=rate_limits)))
    await early_in_a_rate_window(db, rate_limits.window_seconds)
    pair = await conceal(client, "x")
    count = "SELECT count(*) FROM audit_events WHERE event = 'rate.limited' AND detail = $1"
    before = await db.fetchval(count, "show_secret")
    statuses = [(await client.get(f"{V2}/secret/{pair.secret_key}")).status for _ in range(4)]
    assert statuses == [200, 429, 429, 429]
    assert await db.fetchval(count, "show_secret") == before + 1


async def test_audit_failure_stops_the_change(client: Client, db: asyncpg.Connection) -> None:
    pair = await conceal(client, "kept")
    await db.execute(
        "ALTER TABLE audit_events ADD CONSTRAINT test_no_reveal "
        "CHECK (event <> 'secret.revealed') NOT VALID"
    )
    try:
        status, _ = await reveal(client, pair.secret_key)
    finally:
        await db.execute("ALTER TABLE audit_events DROP CONSTRAINT test_no_reveal")
    assert status == 500
    status, body = await reveal(client, pair.secret_key)
    assert (status, body["record"]["secret_value"]) == (200, "kept")  # nothing was consumed
    events = [e["event"] for e in await _events(db, _ref(client, pair.receipt_key))]
    assert events.count("secret.revealed") == 1


async def test_failed_change_writes_no_event(client: Client, db: asyncpg.Connection) -> None:
    before = await db.fetchval("SELECT count(*) FROM audit_events WHERE event = 'secret.created'")
    await db.execute(
        "ALTER TABLE receipts ADD CONSTRAINT test_no_anon CHECK (custid <> 'anon') NOT VALID"
    )
    try:
        response = await client.post(f"{V2}/secret/conceal", json={"secret": {"secret": "x"}})
    finally:
        await db.execute("ALTER TABLE receipts DROP CONSTRAINT test_no_anon")
    assert response.status == 500
    after = await db.fetchval("SELECT count(*) FROM audit_events WHERE event = 'secret.created'")
    assert after == before


@pytest.mark.parametrize(
    "statement",
    ["UPDATE audit_events SET detail = 'x'", "DELETE FROM audit_events", "TRUNCATE audit_events"],
)
async def test_the_database_refuses_changes(
    client: Client, db: asyncpg.Connection, statement: str
) -> None:
    await conceal(client, "x")
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
        await db.execute(statement)


async def test_key_retirement_is_refused_while_needed_then_recorded(
    client: Client, db: asyncpg.Connection
) -> None:
    svc = client.app[SERVICES]
    await conceal(client, "sealed under key 1")
    with pytest.raises(InvalidRequest, match="still seals 2 live rows"):
        await retire_key(svc, 1)  # the secret and its receipt's sealed share key
    await db.execute("UPDATE secrets SET expires_at = now() - interval '1 second'")
    await db.execute("UPDATE receipts SET expires_at = now() - interval '1 second'")
    assert await retire_key(svc, 1) == 0
    row = await db.fetchrow(
        "SELECT actor, detail FROM audit_events WHERE event = 'key.retired' ORDER BY id DESC"
    )
    assert row is not None
    assert (row["actor"], row["detail"]) == ("operator", "1")


async def test_reading_the_trail_is_itself_recorded(client: Client, db: asyncpg.Connection) -> None:
    svc = client.app[SERVICES]
    token = await add_customer(svc, "reader@example.com", "basic", admin=True)
    for n in range(3):
        await conceal(client, f"v{n}")
    basic = base64.b64encode(f"reader@example.com:{token}".encode()).decode()
    response = await client.get(f"{V2}/audit?limit=3", headers={"Authorization": f"Basic {basic}"})
    assert response.status == 200
    row = await db.fetchrow(
        "SELECT actor, detail FROM audit_events WHERE event = 'audit.read' ORDER BY id DESC"
    )
    assert row is not None
    assert (row["actor"], row["detail"]) == ("reader@example.com", "3")


async def test_a_token_sent_as_the_user_name_is_not_recorded(
    client: Client, db: asyncpg.Connection
) -> None:
    token = await add_customer(client.app[SERVICES], "swap@example.com", "basic")
    swapped = base64.b64encode(f"{token}:swap@example.com".encode()).decode()
    response = await client.get(
        f"{V2}/private/recent", headers={"Authorization": f"Basic {swapped}"}
    )
    assert response.status == 401
    row = await db.fetchrow(
        "SELECT detail FROM audit_events WHERE event = 'auth.failed' ORDER BY id DESC LIMIT 1"
    )
    assert row is not None
    assert row["detail"] == "(not an e-mail)"
    dump = await db.fetchval("SELECT string_agg(audit_events::text, ' ') FROM audit_events")
    assert token not in dump
