"""`python -m app customers webhook | webhook-remove | notify-sender` in their own process."""

from __future__ import annotations

import asyncio
import re

import asyncpg

from app import crypto
from tests.factories import TEST_KEYS
from tests.test_customers_cli import added, cli

EMAIL = "a@example.com"


async def _hook_row(db: asyncpg.Connection) -> asyncpg.Record:
    row = await db.fetchrow(
        "SELECT webhook_url, webhook_key_id, webhook_secret_sealed, notify_sender, "
        "customers::text AS whole FROM customers WHERE custid = $1",
        EMAIL,
    )
    assert row is not None
    return row


async def test_webhook_prints_a_new_secret_once_and_stores_it_sealed(
    database_url: str, db: asyncpg.Connection
) -> None:
    await added(database_url)
    done = await cli(database_url, "webhook", EMAIL, "https://hooks.example.com/ots")
    assert done.returncode == 0, done.stderr
    found = re.search(r"^signing secret: (whsec_\S+)$", done.stdout, re.MULTILINE)
    assert found is not None, done.stdout
    secret = found.group(1)
    row = await _hook_row(db)
    assert row["webhook_url"] == "https://hooks.example.com/ots"
    assert secret not in row["whole"]
    assert secret.encode() not in row["webhook_secret_sealed"]
    ring = crypto.parse_keyring(TEST_KEYS)
    opened = crypto.open_for_notify(
        ring.master(row["webhook_key_id"]), row["webhook_secret_sealed"]
    )
    assert opened == secret.encode()
    trail = await db.fetchval(
        "SELECT detail FROM audit_events WHERE event = 'webhook.configured' ORDER BY id DESC"
    )
    assert trail == EMAIL  # who, not the URL (it may carry the receiver's token)


async def test_a_given_secret_is_read_from_stdin_and_never_printed(
    database_url: str, db: asyncpg.Connection
) -> None:
    await added(database_url)
    given = "whsec_given_by_the_receiver_0123456789"
    url = "https://hooks.example.com/x"
    done = await cli(database_url, "webhook", EMAIL, url, "--secret-stdin", stdin=given + "\n")
    assert done.returncode == 0, done.stderr
    assert given not in done.stdout + done.stderr
    row = await _hook_row(db)
    ring = crypto.parse_keyring(TEST_KEYS)
    opened = crypto.open_for_notify(
        ring.master(row["webhook_key_id"]), row["webhook_secret_sealed"]
    )
    assert opened == given.encode()
    short = await cli(database_url, "webhook", EMAIL, url, "--secret-stdin", stdin="short\n")
    assert short.returncode == 1
    assert "at least 24 characters" in short.stderr


BAD_URLS = (
    "http://127.0.0.1:8080/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://10.0.0.1/hook",
    "http://[::1]/hook",
    "http://localhost/hook",
    "ftp://hooks.example.com/",
    "not a url",
)


async def test_bad_urls_are_refused_at_configuration(
    database_url: str, db: asyncpg.Connection
) -> None:
    await added(database_url)
    runs = await asyncio.gather(*(cli(database_url, "webhook", EMAIL, url) for url in BAD_URLS))
    for url, done in zip(BAD_URLS, runs, strict=True):
        assert done.returncode == 1, url
        assert done.stderr.startswith("error: webhook"), (url, done.stderr)
    assert (await _hook_row(db))["webhook_url"] is None


async def test_remove_and_sender_switch(database_url: str, db: asyncpg.Connection) -> None:
    await added(database_url)
    assert (await cli(database_url, "webhook", EMAIL, "https://hooks.example.com/")).returncode == 0
    removed = await cli(database_url, "webhook-remove", EMAIL)
    assert removed.returncode == 0, removed.stderr
    row = await _hook_row(db)
    assert (row["webhook_url"], row["webhook_secret_sealed"]) == (None, None)
    assert (await cli(database_url, "notify-sender", EMAIL, "on")).returncode == 0
    assert (await _hook_row(db))["notify_sender"] is True
    assert (await cli(database_url, "notify-sender", EMAIL, "off")).returncode == 0
    assert (await _hook_row(db))["notify_sender"] is False
    unknown = await cli(database_url, "notify-sender", "nobody@example.com", "on")
    assert unknown.returncode == 1
    assert "no such customer" in unknown.stderr
