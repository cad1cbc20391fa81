"""Notification e-mail through a real SMTP server (aiosmtpd, in this process), sent by the
service's own background worker: the recipient's mail with the share link, and the
sender's opt-in mail when a secret is revealed or expires."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from app.config import Settings
from app.core import accounts, webhooks
from app.expiry import sweep
from app.keys import SERVICES
from app.notify import webhook
from app.notify.mail import Outgoing
from app.notify.worker import Deliverer, deliver_due
from app.server import create_app
from tests.factories import V2, Client, reveal
from tests.notify_parts import Inbox, basic_auth, notify_settings, parts, smtp_server, wait_until

ALICE, BOB = "alice@example.com", "bob@example.org"
VALUE = "correct horse battery staple 7c1f"


@pytest.fixture
async def inbox() -> AsyncIterator[Inbox]:
    async with smtp_server() as inbox:
        yield inbox


@pytest.fixture
async def mailing(
    db: asyncpg.Connection, aiohttp_client: AiohttpClient, settings: Settings, inbox: Inbox
) -> TestClient[web.Request, web.Application]:
    return await aiohttp_client(create_app(notify_settings(settings, inbox=inbox)))


async def _account(client: Client) -> dict[str, str]:
    token = await accounts.add_customer(client.app[SERVICES], ALICE, "basic")
    return basic_auth(ALICE, token)


async def _conceal(client: Client, auth: dict[str, str], **fields: object) -> dict[str, str]:
    secret = {"secret": VALUE, "passphrase": "open sesame 42", **fields}
    response = await client.post(f"{V2}/secret/conceal", json={"secret": secret}, headers=auth)
    assert response.status == 200, await response.text()
    record = (await response.json())["record"]
    return {"share": record["secret"]["key"], "receipt": record["metadata"]["key"]}


async def test_recipient_gets_the_share_link_and_nothing_else_secret(
    mailing: Client, inbox: Inbox, db: asyncpg.Connection
) -> None:
    keys = await _conceal(mailing, await _account(mailing), recipient=[BOB])
    await wait_until(lambda: _count(inbox, 1), "the recipient's mail arrives")

    [(to, message)] = inbox.messages()
    assert to == (BOB,)
    assert message["To"] == BOB
    assert message["Subject"] == "A secret was shared with you"
    body = parts(message)
    link = f"https://ots.example/secret/{keys['share']}"
    assert link in body["plain"]
    assert f'href="{link}"' in body["html"]
    assert ALICE in body["plain"]  # who sent it, as upstream says
    raw = inbox.received[0][1]
    for secret in (VALUE, "open sesame 42", keys["receipt"]):
        assert secret.encode() not in raw
    row = await db.fetchrow("SELECT state, attempts, payload_sealed FROM notifications")
    assert row is not None
    assert (row["state"], row["attempts"], row["payload_sealed"]) == ("delivered", 1, None)


async def test_the_sealed_payload_holds_no_link_in_the_clear(
    aiohttp_client: AiohttpClient, settings: Settings, db: asyncpg.Connection
) -> None:
    """Before delivery (no worker here), the row is all the database has: sealed."""
    client = await aiohttp_client(create_app(settings, sweeper=False))
    keys = await _conceal(client, await _account(client), recipient=[BOB])
    row = await db.fetchrow(
        "SELECT notifications::text AS whole, payload_sealed FROM notifications"
    )
    assert row is not None
    assert keys["share"] not in row["whole"]
    assert keys["share"].encode() not in row["payload_sealed"]
    assert BOB not in row["whole"]


async def test_sender_who_opted_in_is_told_of_the_reveal(
    mailing: Client, inbox: Inbox, db: asyncpg.Connection
) -> None:
    auth = await _account(mailing)
    quiet = await _conceal(mailing, auth)
    assert (await reveal(mailing, quiet["share"], passphrase="open sesame 42"))[0] == 200
    assert await db.fetchval("SELECT count(*) FROM notifications") == 0  # not opted in

    await webhooks.set_notify_sender(mailing.app[SERVICES], ALICE, True)
    keys = await _conceal(mailing, auth)
    assert (await reveal(mailing, keys["share"], passphrase="open sesame 42"))[0] == 200
    await wait_until(lambda: _count(inbox, 1), "the sender's mail arrives")

    [(to, message)] = inbox.messages()
    assert to == (ALICE,)
    assert message["Subject"] == "Your secret was read"
    assert keys["share"][:6] in parts(message)["plain"]  # the short reference only
    for secret in (VALUE, keys["share"], keys["receipt"]):
        assert secret.encode() not in inbox.received[0][1]


@pytest.mark.parametrize("receipt_lapsed", [False, True])
async def test_sender_who_opted_in_is_told_of_the_expiry(
    mailing: Client, inbox: Inbox, db: asyncpg.Connection, receipt_lapsed: bool
) -> None:
    # receipt_lapsed: the sweeper comes so late that the receipt is past its life too, and
    # goes in the same batch (found in review: the notice went with it).
    auth = await _account(mailing)
    await webhooks.set_notify_sender(mailing.app[SERVICES], ALICE, True)
    keys = await _conceal(mailing, auth, ttl=60)
    await db.execute("UPDATE secrets SET expires_at = now() - interval '2 second'")
    if receipt_lapsed:
        await db.execute("UPDATE receipts SET expires_at = now() - interval '1 second'")
    svc = mailing.app[SERVICES]
    purged = await sweep(svc, batch=10)
    assert (purged.receipts_expired, purged.receipts_deleted) == (1, int(receipt_lapsed))
    await wait_until(lambda: _count(inbox, 1), "the expiry mail arrives")

    [(to, message)] = inbox.messages()
    assert to == (ALICE,)
    assert message["Subject"] == "Your secret expired unread"
    assert "expired" in parts(message)["plain"]
    assert keys["share"].encode() not in inbox.received[0][1]


async def _count(inbox: Inbox, expected: int) -> bool:
    return len(inbox.received) >= expected


async def test_without_a_relay_mail_is_dead_at_once_and_says_why(
    db: asyncpg.Connection, aiohttp_client: AiohttpClient, settings: Settings
) -> None:
    client = await aiohttp_client(create_app(notify_settings(settings)))  # no OTS_SMTP_HOST
    await _conceal(client, await _account(client), recipient=[BOB])

    async def dead() -> bool:
        row = await db.fetchrow("SELECT state, attempts, last_error FROM notifications")
        return row is not None and row["state"] == "dead"

    await wait_until(dead, "the mail is dead-lettered")
    row = await db.fetchrow("SELECT attempts, last_error FROM notifications")
    assert row is not None
    assert row["attempts"] == 1  # not retried for hours
    assert "OTS_SMTP_HOST" in row["last_error"]


async def test_a_sender_who_opts_out_gets_nothing_already_queued(
    db: asyncpg.Connection, aiohttp_client: AiohttpClient, settings: Settings, inbox: Inbox
) -> None:
    # The app's own worker polls once at start, then sleeps: this test delivers by hand.
    configured = notify_settings(settings, inbox=inbox, poll_interval=3600.0)
    client = await aiohttp_client(create_app(configured))
    svc = client.app[SERVICES]
    auth = await _account(client)
    await webhooks.set_notify_sender(svc, ALICE, True)
    keys = await _conceal(client, auth)
    status, _ = await reveal(client, keys["share"], passphrase="open sesame 42")
    assert status == 200
    assert await db.fetchval("SELECT count(*) FROM notifications WHERE state = 'pending'") == 1
    await webhooks.set_notify_sender(svc, ALICE, False)  # after it was queued

    async with webhook.session(()) as http:
        deliverer = Deliverer(
            svc.store,
            svc.keys,
            svc.audit_key,
            configured.notify,
            http,
            Outgoing.build(configured.notify.smtp, "en", configured.base_url),
        )
        assert await deliver_due(deliverer) == 1
    row = await db.fetchrow("SELECT state, last_error FROM notifications")
    assert row is not None
    assert (row["state"], row["last_error"]) == ("dead", "the account no longer wants these mails")
    assert inbox.received == []
