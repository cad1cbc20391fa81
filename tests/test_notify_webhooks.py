"""Webhooks to a real HTTP receiver (aiohttp, in this process), sent by the service's own
background worker: signed bodies, retries with backoff, dead-lettering."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from prometheus_client import REGISTRY
from pytest_aiohttp import AiohttpClient

from app.config import Settings
from app.core import accounts, webhooks
from app.expiry import sweep
from app.keys import SERVICES
from app.notify.webhook import signature, verify
from app.server import create_app
from tests.factories import V2, Client, burn, reveal
from tests.notify_parts import Receiver, basic_auth, http_receiver, notify_settings, wait_until

ALICE = "alice@example.com"
VALUE = "webhook test value 93e2"


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with http_receiver() as receiver:
        yield receiver


async def _service(
    aiohttp_client: AiohttpClient, settings: Settings, max_attempts: int = 3
) -> TestClient[web.Request, web.Application]:
    return await aiohttp_client(create_app(notify_settings(settings, max_attempts=max_attempts)))


async def _hooked(client: Client, url: str) -> tuple[dict[str, str], bytes]:
    """Alice's account with a webhook to `url`: (her auth header, the signing secret)."""
    svc = client.app[SERVICES]
    token = await accounts.add_customer(svc, ALICE, "basic")
    secret = await webhooks.set_webhook(svc, ALICE, url, deny=())
    return basic_auth(ALICE, token), secret.encode()


async def _conceal(client: Client, auth: dict[str, str]) -> dict[str, str]:
    response = await client.post(
        f"{V2}/secret/conceal", json={"secret": {"secret": VALUE}}, headers=auth
    )
    assert response.status == 200
    record = (await response.json())["record"]
    return {"share": record["secret"]["key"], "receipt": record["metadata"]["key"]}


async def test_events_arrive_signed_and_without_secrets(
    aiohttp_client: AiohttpClient, settings: Settings, receiver: Receiver, db: asyncpg.Connection
) -> None:
    client = await _service(aiohttp_client, settings)
    auth, secret = await _hooked(client, receiver.url)
    revealed, burned = await _conceal(client, auth), await _conceal(client, auth)
    assert (await reveal(client, revealed["share"]))[0] == 200
    assert (await burn(client, burned["receipt"]))[0] == 200
    expired = await _conceal(client, auth)
    await db.execute("UPDATE secrets SET expires_at = now() - interval '1 second'")
    svc = client.app[SERVICES]
    assert (await sweep(svc, batch=10)).receipts_expired == 1
    await wait_until(lambda: _answered(receiver, 6), "six events delivered")

    bodies = [json.loads(body) for _, body in receiver.requests]
    assert sorted(b["type"] for b in bodies) == [
        "secret.burned",
        "secret.created",
        "secret.created",
        "secret.created",
        "secret.expired",
        "secret.revealed",
    ]
    for headers, body in receiver.requests:
        assert verify(secret, headers["X-Signature"], body)
        assert not verify(b"whsec_someone_else_entirely_000", headers["X-Signature"], body)
        assert not verify(secret, headers["X-Signature"], body + b" ")
        assert headers["X-Event-Id"] == json.loads(body)["id"]
        for capability in (VALUE, *revealed.values(), *burned.values(), *expired.values()):
            assert capability.encode() not in body
    assert len({b["id"] for b in bodies}) == 6
    assert {b["shortid"] for b in bodies} == {k["share"][:6] for k in (revealed, burned, expired)}
    states = await db.fetch("SELECT state, attempts FROM notifications")
    assert [(r["state"], r["attempts"]) for r in states] == [("delivered", 1)] * 6


async def test_anonymous_secrets_and_other_events_enqueue_nothing(
    aiohttp_client: AiohttpClient, settings: Settings, receiver: Receiver, db: asyncpg.Connection
) -> None:
    client = await _service(aiohttp_client, settings)
    await _hooked(client, receiver.url)
    response = await client.post(f"{V2}/secret/conceal", json={"secret": {"secret": VALUE}})
    key = (await response.json())["record"]["secret"]["key"]
    assert (await client.get(f"{V2}/secret/{key}")).status == 200  # secret.viewed
    assert (await reveal(client, key))[0] == 200
    assert await db.fetchval("SELECT count(*) FROM notifications") == 0
    assert await db.fetchval("SELECT count(*) FROM audit_events WHERE receipt_ref IS NOT NULL") >= 3


async def test_a_receiver_that_fails_twice_gets_it_on_the_third_attempt(
    aiohttp_client: AiohttpClient, settings: Settings, db: asyncpg.Connection
) -> None:
    async with http_receiver(Receiver(fail_first=2)) as receiver:
        client = await _service(aiohttp_client, settings, max_attempts=5)
        auth, _ = await _hooked(client, receiver.url)
        await _conceal(client, auth)
        await wait_until(lambda: _answered(receiver, 1), "delivered after two failures")

    assert len(receiver.requests) == 3
    assert len({headers["X-Event-Id"] for headers, _ in receiver.requests}) == 1  # one event
    assert [json.loads(body)["attempt"] for _, body in receiver.requests] == [1, 2, 3]
    row = await db.fetchrow("SELECT state, attempts, last_error FROM notifications")
    assert row is not None
    assert (row["state"], row["attempts"], row["last_error"]) == ("delivered", 3, None)


async def test_dead_letter_after_the_limit_is_audited_and_counted(
    aiohttp_client: AiohttpClient, settings: Settings, db: asyncpg.Connection
) -> None:
    dead_before = _dead_count()
    async with http_receiver(Receiver(fail_first=1000)) as receiver:
        client = await _service(aiohttp_client, settings, max_attempts=3)
        auth, _ = await _hooked(client, receiver.url)
        await _conceal(client, auth)
        await wait_until(lambda: _dead(db), "the notification is dead-lettered")

    assert len(receiver.requests) == 3  # and no more after the limit
    row = await db.fetchrow("SELECT attempts, last_error, receipt_ref FROM notifications")
    assert row is not None
    assert row["attempts"] == 3
    assert row["last_error"] == "HTTP 500 (after 3 attempts)"
    # The trail outlives each test (it is append-only), so look for this receipt's rows.
    trail = await db.fetch(
        "SELECT outcome, actor, detail FROM audit_events "
        "WHERE event = 'notification.dead' AND receipt_ref = $1",
        row["receipt_ref"],
    )
    assert [(t["outcome"], t["actor"]) for t in trail] == [("failure", "system")]
    assert trail[0]["detail"].startswith("webhook secret.created ")
    assert trail[0]["detail"].endswith(": HTTP 500 (after 3 attempts)")
    assert _dead_count() == dead_before + 1


async def _answered(receiver: Receiver, expected: int) -> bool:
    return len(receiver.answered_ok) >= expected


async def _dead(db: asyncpg.Connection) -> bool:
    return bool(await db.fetchval("SELECT count(*) FROM notifications WHERE state = 'dead'"))


def _dead_count() -> float:
    labels = {"channel": "webhook", "outcome": "dead"}
    return REGISTRY.get_sample_value("ots_notifications_total", labels) or 0.0


def test_the_readme_verification_recipe_accepts_our_signatures_only() -> None:
    """Receivers copy the README's verify(); it must agree with what we send."""
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    recipe = readme.split("```python\nimport hashlib, hmac, time\n", 1)[1].split("```", 1)[0]
    scope: dict[str, Any] = {}
    exec("import hashlib, hmac, time\n" + recipe, scope)  # noqa: S102  # our own README
    body, secret = b'{"id":"x","type":"secret.revealed"}', b"whsec_readme_recipe_test_0001"
    header = signature(secret, int(time.time()), body)
    assert scope["verify"](secret, header, body)
    assert not scope["verify"](secret, header, body.replace(b"revealed", b"burned"))
    assert not scope["verify"](b"whsec_another_secret_entirely_01", header, body)
    stale = signature(secret, int(time.time()) - 3600, body)
    assert not scope["verify"](secret, stale, body)  # a replayed old request
