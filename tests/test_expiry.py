"""Expiry on the database clock, and the sweeper that reclaims rows."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import Any

import asyncpg
import pytest
from prometheus_client import REGISTRY
from pytest_aiohttp import AiohttpClient

from app.config import Settings
from app.core import trail
from app.expiry import sweep
from app.keys import SERVICES
from app.server import create_app
from app.store import expiry as store
from tests.conftest import make_settings
from tests.factories import Client, Pair, burn, conceal, get, reveal


def _expire(where: str = "") -> str:
    """Secrets past their time, as if their TTL had run out: their receipts made that long
    ago too, since a receipt whose secret is gone reads as expired only once its secret's
    TTL has passed (before that, it was removed some other way)."""
    return f"""
    WITH aged AS (
        UPDATE secrets SET expires_at = now() - interval '1 second' {where} RETURNING receipt_id
    )
    UPDATE receipts r SET created_at = now() - make_interval(secs => r.secret_ttl + 1)
      FROM aged WHERE r.id = aged.receipt_id
    """  # noqa: S608  # constants only


EXPIRE_SECRETS = _expire()
EXPIRE_OLDER = _expire("WHERE created_at < (SELECT max(created_at) FROM secrets)")
EXPIRY_EVENTS = "SELECT count(*) FROM audit_events WHERE event = 'secret.expired'"
EXPIRE_RECEIPTS = "UPDATE receipts SET expires_at = now() - interval '1 second'"
# Expired secrets a second apart, the newest first in a sweep's order (by expires_at).
STAGGER_EXPIRY = (
    "UPDATE secrets SET expires_at = now() - make_interval(secs => row_number)"
    " FROM (SELECT id, row_number() OVER (ORDER BY created_at) FROM secrets) o"
    " WHERE secrets.id = o.id"
)


async def _expired_secrets(client: Client, db: asyncpg.Connection, count: int) -> list[Pair]:
    """`count` secrets concealed, then all of them past their time."""
    pairs = [await conceal(client, f"v{n}") for n in range(count)]
    await db.execute(EXPIRE_SECRETS)
    return pairs


async def test_expired_secret_does_not_exist_anywhere(
    client: Client, db: asyncpg.Connection
) -> None:
    pair = await conceal(client, "late", ttl=3600)
    await db.execute(EXPIRE_SECRETS)
    status, _ = await get(client, f"/secret/{pair.secret_key}")
    assert status == 404
    status, _ = await reveal(client, pair.secret_key)
    assert status == 404
    status, body = await get(client, f"/private/{pair.receipt_key}")
    assert status == 200
    assert body["record"]["state"] == "expired"
    assert body["record"]["is_expired"] is True
    assert "secret_key" not in body["record"]
    status, body = await burn(client, pair.receipt_key)
    assert status == 200
    assert body["record"]["state"] == "expired"


async def test_expired_receipt_is_unknown(client: Client, db: asyncpg.Connection) -> None:
    pair = await conceal(client, "late")
    await db.execute(EXPIRE_SECRETS)
    await db.execute(EXPIRE_RECEIPTS)
    for path in (f"/private/{pair.receipt_key}", f"/receipt/{pair.receipt_key}"):
        status, body = await get(client, path)
        assert (status, body["message"]) == (404, "Unknown secret")
    status, _ = await burn(client, pair.receipt_key)
    assert status == 404


async def test_sweep_reclaims_in_batches_and_leaves_receipts_to_read_as_expired(
    client: Client, db: asyncpg.Connection
) -> None:
    """The sweeper deletes secrets and leaves their receipts as they are (closing each was
    a third of its work a row): a receipt whose secret is gone reads as expired, with no
    link to the secret, until its own life ends."""
    expired = [await conceal(client, f"old {n}") for n in range(12)]
    alive = await conceal(client, "young")
    await db.execute(EXPIRE_OLDER)
    untouched = await db.fetch("SELECT * FROM receipts ORDER BY id")
    purged = await sweep(client.app[SERVICES], batch=5)
    assert purged.secrets == 12
    assert purged.receipts_expired == 12
    assert await db.fetchval("SELECT count(*) FROM secrets") == 1
    assert await db.fetch("SELECT * FROM receipts ORDER BY id") == untouched
    for pair in expired:
        status, body = await get(client, f"/private/{pair.receipt_key}")
        assert (status, body["record"]["state"]) == (200, "expired")
        assert body["record"]["expired"] is not None
        assert "secret_key" not in body["record"]
        assert body["record"]["secret_state"] is None
        assert body["record"]["share_path"] == "secret/"
    status, body = await reveal(client, alive.secret_key)
    assert status == 200
    assert body["record"]["secret_value"] == "young"


async def test_a_sweep_keeps_to_its_rate(client: Client, db: asyncpg.Connection) -> None:
    """OTS_EXPIRY_RATE: after each full batch a pass waits until its rows are due at the
    rate, and still drains the whole backlog. 30 rows in batches of 10 at 50 rows a second:
    at least 0.6 s (it waits after 10, 20 and 30 rows); unpaced it takes a few ms."""
    await _expired_secrets(client, db, 30)
    started = time.monotonic()
    purged = await asyncio.wait_for(sweep(client.app[SERVICES], batch=10, rate=50), 10)
    assert time.monotonic() - started >= 30 / 50 - CLOCK_SLACK
    assert purged.secrets == 30
    assert await db.fetchval("SELECT count(*) FROM secrets") == 0


# asyncio's timers may fire up to a clock tick early.
CLOCK_SLACK = 0.02


async def test_sweep_deletes_receipts_past_their_life(
    client: Client, db: asyncpg.Connection
) -> None:
    await _expired_secrets(client, db, 3)
    await db.execute(EXPIRE_RECEIPTS)
    purged = await sweep(client.app[SERVICES], batch=2)
    assert purged.receipts_deleted == 3
    assert await db.fetchval("SELECT count(*) FROM receipts") == 0


async def test_sweep_skips_rows_someone_holds(client: Client, db: asyncpg.Connection) -> None:
    await conceal(client, "held")
    await conceal(client, "free")
    await db.execute(EXPIRE_SECRETS)
    async with db.transaction():
        held = await db.fetchval("SELECT id FROM secrets ORDER BY created_at LIMIT 1 FOR UPDATE")
        purged = await asyncio.wait_for(sweep(client.app[SERVICES], batch=10), 5)
        assert purged.secrets == 1
    assert await db.fetchval("SELECT id FROM secrets") == held


async def test_a_row_skipped_mid_pass_is_taken_by_the_next_pass(
    client: Client, db: asyncpg.Connection
) -> None:
    # A pass goes forward by expires_at, so a row it skipped (held) lies behind it: the
    # next pass, starting from the oldest again, must take it.
    await _expired_secrets(client, db, 5)
    await db.execute(STAGGER_EXPIRY)
    async with db.transaction():
        held = await db.fetchval("SELECT id FROM secrets ORDER BY expires_at LIMIT 1 FOR UPDATE")
        purged = await asyncio.wait_for(sweep(client.app[SERVICES], batch=1), 5)
        assert purged.secrets == 4
    assert await db.fetchval("SELECT id FROM secrets") == held
    assert (await sweep(client.app[SERVICES], batch=1)).secrets == 1
    assert await db.fetchval("SELECT count(*) FROM secrets") == 0


async def test_concurrent_sweepers_never_double_count(
    client: Client, db: asyncpg.Connection
) -> None:
    await db.execute(
        """
        WITH r AS (
            INSERT INTO receipts (id, key_id, secret_shortkey, custid, kind, state, secret_ttl,
                                  receipt_ttl, has_passphrase, value_claimable, expires_at)
            SELECT sha256(g::text::bytea), 1, 'abcdef', 'anon', 'conceal', 'new', 60, 120,
                   false, false, now() + interval '1 hour'
              FROM generate_series(1, 2000) g
            RETURNING id)
        INSERT INTO secrets (id, receipt_id, key_id, ciphertext, value_bytes, expires_at)
        SELECT sha256(id), id, 1, '\\x00', 1, now() - interval '1 second' FROM r
        """
    )
    earlier = await db.fetchval(EXPIRY_EVENTS)
    results = await asyncio.gather(*(sweep(client.app[SERVICES], batch=100) for _ in range(4)))
    assert sum(r.secrets for r in results) == 2000
    assert sum(r.receipts_expired for r in results) == 2000
    assert await db.fetchval("SELECT count(*) FROM secrets") == 0
    assert await db.fetchval(EXPIRY_EVENTS) - earlier == 2000
    twice = "SELECT count(*) - count(DISTINCT receipt_ref) FROM audit_events WHERE event = $1"
    assert await db.fetchval(twice, "secret.expired") == 0  # no receipt expired twice
    assert (await trail.verify(client.app[SERVICES]))[1] is None


def _batches() -> tuple[float, float]:
    """Sweep batches made so far: by one audited statement, by a transaction."""
    return _batches_by("statement"), _batches_by("transaction")


def _batches_since(before: tuple[float, float]) -> tuple[float, float]:
    now = _batches()
    return now[0] - before[0], now[1] - before[1]


def _batches_by(path: str) -> float:
    return REGISTRY.get_sample_value("ots_sweeper_batches_total", {"path": path}) or 0.0


async def test_a_batch_goes_in_one_audited_statement(
    client: Client, db: asyncpg.Connection
) -> None:
    pairs = await _expired_secrets(client, db, 7)
    receipts = {row["receipt_id"] for row in await db.fetch("SELECT receipt_id FROM secrets")}
    before = _batches()
    earlier = await db.fetchval("SELECT coalesce(max(id), 0) FROM audit_events")
    purged = await sweep(client.app[SERVICES], batch=3)
    assert (purged.secrets, purged.receipts_expired) == (7, 7)
    assert _batches_since(before) == (3, 0)
    # Each event names the receipt of a secret that went (sent packed, as hex words).
    named = await db.fetch(
        "SELECT event, actor, receipt_ref FROM audit_events WHERE id > $1", earlier
    )
    assert [(row["event"], row["actor"]) for row in named] == [("secret.expired", "system")] * 7
    assert {row["receipt_ref"] for row in named} == receipts
    for pair in pairs:
        status, body = await get(client, f"/private/{pair.receipt_key}")
        assert (status, body["record"]["state"]) == (200, "expired")
    assert (await trail.verify(client.app[SERVICES]))[1] is None


async def test_a_read_of_four_batches_purges_them_a_statement_each(
    client: Client, db: asyncpg.Connection
) -> None:
    # Batches of 2: the first read takes 8 rows (four batches' worth) in four statements,
    # and, having come back full, a second read takes the ninth.
    await _expired_secrets(client, db, 9)
    before = _batches()
    purged = await sweep(client.app[SERVICES], batch=2)
    assert purged.secrets == 9
    assert _batches_since(before) == (5, 0)
    assert await db.fetchval("SELECT count(*) FROM secrets") == 0
    assert (await trail.verify(client.app[SERVICES]))[1] is None


async def test_a_batch_failing_mid_read_leaves_the_rest_to_the_transaction(
    client: Client, db: asyncpg.Connection
) -> None:
    # Six rows in sweep order, the third held: the read's first statement purges the first
    # two; the second (third and fourth) purges nothing; the transaction, from the read's
    # start, takes the fourth and fifth, skipping the third; a read after it, the sixth.
    await _expired_secrets(client, db, 6)
    await db.execute(STAGGER_EXPIRY)
    before = _batches()
    earlier = await db.fetchval(EXPIRY_EVENTS)
    async with db.transaction():
        # Locked by id: FOR UPDATE beside OFFSET would lock the rows it passes over too.
        third = "SELECT id FROM secrets ORDER BY expires_at OFFSET 2 LIMIT 1"
        held = await db.fetchval(f"SELECT id FROM secrets WHERE id = ({third}) FOR UPDATE")  # noqa: S608
        purged = await asyncio.wait_for(sweep(client.app[SERVICES], batch=2), 5)
    assert purged.secrets == 5
    assert _batches_since(before) == (2, 1)
    assert await db.fetchval("SELECT id FROM secrets") == held
    assert await db.fetchval(EXPIRY_EVENTS) - earlier == 5
    assert (await sweep(client.app[SERVICES], batch=2)).secrets == 1
    assert await db.fetchval(EXPIRY_EVENTS) - earlier == 6
    assert (await trail.verify(client.app[SERVICES]))[1] is None


async def test_a_batch_the_statement_cannot_purge_whole_goes_the_transactional_way(
    client: Client, db: asyncpg.Connection
) -> None:
    # A row someone holds past lock_timeout (1 s): the statement waits for it, gives up
    # and purges nothing, and the transaction, which skips what is held, purges the other
    # two, each recorded; the next pass takes the third.
    await _expired_secrets(client, db, 3)
    before = _batches()
    earlier = await db.fetchval(EXPIRY_EVENTS)
    async with db.transaction():
        await db.execute("SELECT 1 FROM secrets ORDER BY created_at LIMIT 1 FOR UPDATE")
        purged = await asyncio.wait_for(sweep(client.app[SERVICES], batch=10), 5)
    assert (purged.secrets, purged.receipts_expired) == (2, 2)
    assert _batches_since(before) == (0, 1)
    assert await db.fetchval(EXPIRY_EVENTS) - earlier == 2
    assert (await sweep(client.app[SERVICES], batch=10)).secrets == 1
    assert await db.fetchval("SELECT count(*) FROM secrets") == 0
    assert await db.fetchval(EXPIRY_EVENTS) - earlier == 3
    assert (await trail.verify(client.app[SERVICES]))[1] is None


async def test_a_row_held_a_moment_is_waited_for_and_purged_with_the_rest(
    client: Client, db: asyncpg.Connection
) -> None:
    # The batch statement takes no row lock of its own (store.expiry.PURGE_EXPIRED): a row
    # someone holds is waited for, and once they let go of it, still there, the statement
    # purges the whole batch; nothing goes the transactional way.
    await _expired_secrets(client, db, 3)
    before = _batches()
    earlier = await db.fetchval(EXPIRY_EVENTS)
    holding = db.transaction()
    await holding.start()
    await db.execute("SELECT 1 FROM secrets ORDER BY created_at LIMIT 1 FOR UPDATE")
    sweeping = asyncio.create_task(sweep(client.app[SERVICES], batch=10))
    await asyncio.sleep(0.3)  # well within lock_timeout (1 s)
    assert not sweeping.done()
    await holding.rollback()
    purged = await asyncio.wait_for(sweeping, 5)
    assert (purged.secrets, purged.receipts_expired) == (3, 3)
    assert _batches_since(before) == (1, 0)
    assert await db.fetchval("SELECT count(*) FROM secrets") == 0
    assert await db.fetchval(EXPIRY_EVENTS) - earlier == 3
    assert (await trail.verify(client.app[SERVICES]))[1] is None


async def test_a_row_not_where_the_read_saw_it_sends_the_batch_the_transactional_way(
    client: Client, db: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As if two slots had been reused between the read and the purge: the statement finds
    # other rows there (their receipts differ), purges nothing, and the transaction does it.
    await _expired_secrets(client, db, 3)
    read = store.expired

    async def misplaced(*args: Any) -> store.Expired:
        found = await read(*args)
        return dataclasses.replace(found, tids=found.tids[::-1])

    monkeypatch.setattr(store, "expired", misplaced)
    before = _batches()
    earlier = await db.fetchval(EXPIRY_EVENTS)
    purged = await sweep(client.app[SERVICES], batch=10)
    assert (purged.secrets, purged.receipts_expired) == (3, 3)
    assert _batches_since(before) == (0, 1)
    assert await db.fetchval("SELECT count(*) FROM secrets") == 0
    assert await db.fetchval(EXPIRY_EVENTS) - earlier == 3
    assert (await trail.verify(client.app[SERVICES]))[1] is None


async def _left_after_background_sweeps(db: asyncpg.Connection) -> int:
    """Secrets left once the app's own sweeper has taken them all, or after 5 s."""
    left: int = await db.fetchval("SELECT count(*) FROM secrets")
    for _ in range(100):
        if left == 0:
            break
        await asyncio.sleep(0.05)
        left = await db.fetchval("SELECT count(*) FROM secrets")
    return left


async def test_background_task_sweeps(
    db: asyncpg.Connection, aiohttp_client: AiohttpClient, settings: Settings
) -> None:
    fast = make_settings(settings, expiry_interval=0.05)
    client = await aiohttp_client(create_app(fast))
    pair = await conceal(client, "soon gone")
    earlier = await db.fetchval(EXPIRY_EVENTS)
    await db.execute(EXPIRE_SECRETS)
    assert await _left_after_background_sweeps(db) == 0
    assert await db.fetchval(EXPIRY_EVENTS) - earlier == 1
    status, body = await get(client, f"/private/{pair.receipt_key}")
    assert (status, body["record"]["state"]) == (200, "expired")


async def test_the_first_sweep_comes_one_interval_after_start(
    client: Client, db: asyncpg.Connection, aiohttp_client: AiohttpClient, settings: Settings
) -> None:
    await conceal(client, "expired before the next process starts")
    await db.execute(EXPIRE_SECRETS)
    started = await aiohttp_client(create_app(settings))  # conftest: an hour's interval
    assert (await get(started, "/status"))[0] == 200
    await asyncio.sleep(0.2)  # a sweep at start would be done by now
    assert await db.fetchval("SELECT count(*) FROM secrets") == 1


async def test_the_sweeper_has_a_connection_of_its_own(
    db: asyncpg.Connection, aiohttp_client: AiohttpClient, settings: Settings
) -> None:
    """A sweep neither waits for the requests' pool nor takes from it: with that pool's
    only connection held, a backlog is still swept."""
    one = dataclasses.replace(settings.database, pool_max=1)
    client = await aiohttp_client(
        create_app(make_settings(settings, expiry_interval=0.05, database=one))
    )
    await conceal(client, "soon gone")
    async with client.app[SERVICES].store.connection():
        await db.execute(EXPIRE_SECRETS)
        assert await _left_after_background_sweeps(db) == 0
        ours = "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'ots'"
        assert await db.fetchval(f"{ours} AND datname = current_database()") <= 2


async def test_a_receipt_past_its_life_waits_for_its_secret_to_be_swept(
    client: Client, db: asyncpg.Connection
) -> None:
    """Deleting the receipt would take its secret with it (cascade) and no expiry would be
    recorded: while the secret is there (held by someone, so this pass skips it), the
    receipt stays; the next pass expires the secret, recorded, and then deletes both."""
    await conceal(client, "late")
    await db.execute(EXPIRE_SECRETS)
    await db.execute(EXPIRE_RECEIPTS)
    earlier = await db.fetchval(EXPIRY_EVENTS)
    async with db.transaction():
        await db.execute("SELECT 1 FROM secrets FOR UPDATE")
        purged = await asyncio.wait_for(sweep(client.app[SERVICES], batch=10), 5)
    assert (purged.secrets, purged.receipts_deleted) == (0, 0)
    purged = await sweep(client.app[SERVICES], batch=10)
    assert (purged.secrets, purged.receipts_expired, purged.receipts_deleted) == (1, 1, 1)
    assert await db.fetchval(EXPIRY_EVENTS) - earlier == 1
    assert await db.fetchval("SELECT count(*) FROM receipts") == 0
