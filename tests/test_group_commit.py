"""Group commit (app/core/batches.py): concurrent audited writes of a kind go in one
statement, and a batch that cannot be made whole is made one change at a time, with the
same outcomes as without batching. Each test gets its own database, since it counts rows.

The batches are made deterministic by holding every pooled connection while the writes
queue: the first to get a connection then takes all the others with it."""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Iterator
from contextlib import AsyncExitStack
from dataclasses import replace
from typing import TypeVar

import asyncpg
import pytest
from prometheus_client import REGISTRY

from app.core.audit import Event
from app.core.batches import GroupCommit
from app.core.chains import Chains
from app.core.counts import Count, Counts
from app.store import secrets as store
from app.store.db import Store, StoreUnavailable
from app.store.secrets import NewSecret
from tests.conftest import throwaway_database
from tests.test_chains import KEY, _all_chains_intact, _new_secret

T = TypeVar("T")
POOL = 4


@pytest.fixture
def fresh_url(server_url: str) -> Iterator[str]:
    with throwaway_database(server_url, "batches") as url:
        yield url


@pytest.fixture
async def pool(fresh_url: str) -> AsyncIterator[asyncpg.Pool]:
    async with asyncpg.create_pool(fresh_url, min_size=0, max_size=POOL) as pool:
        yield pool


@pytest.fixture
def db_store(pool: asyncpg.Pool) -> Store:
    return Store(pool, 5.0)


@pytest.fixture
def writes(db_store: Store) -> GroupCommit:
    return GroupCommit(db_store, Chains(writers=POOL), KEY, in_flight=1)


async def _queued_together(db_store: Store, *writes: Awaitable[T]) -> list[T | BaseException]:
    """Run the writes while every connection is held, so they queue; then let them go."""
    async with AsyncExitStack() as held:
        for _ in range(POOL):
            await held.enter_async_context(db_store.connection())
        tasks = [asyncio.ensure_future(write) for write in writes]
        for _ in range(3):
            await asyncio.sleep(0)  # every write is queued, the first one waits for the pool
    return await asyncio.gather(*tasks, return_exceptions=True)


def _event(name: str, receipt_ref: bytes) -> Event:
    return Event(name, "success", "anonymous", receipt_ref=receipt_ref)


def _create(writes: GroupCommit, new: NewSecret) -> Awaitable[object]:
    return store.insert_pair(writes.bound(_event("secret.created", new.receipt_id)), new)


def _consume(writes: GroupCommit, new: NewSecret) -> Awaitable[bool]:
    event = _event("secret.revealed", new.receipt_id)
    return store.consume_secret(writes.bound(event), new.secret_id, "received")


def _read(writes: GroupCommit, receipt_id: bytes) -> Awaitable[store.Receipt | None]:
    return store.read_receipt(writes.bound(_event("receipt.viewed", receipt_id)), receipt_id)


def _batches(kind: str) -> tuple[float, float]:
    """How many batches of this kind so far, and how many changes they held."""

    def sample(suffix: str) -> float:
        value = REGISTRY.get_sample_value(f"ots_batch_size_{suffix}", {"kind": kind})
        return value or 0.0

    return sample("count"), sample("sum")


def _fallbacks(kind: str) -> float:
    return REGISTRY.get_sample_value("ots_group_commit_fallback_total", {"kind": kind}) or 0.0


async def _events(pool: asyncpg.Pool, name: str) -> list[bytes]:
    rows = await pool.fetch("SELECT receipt_ref FROM audit_events WHERE event = $1", name)
    return sorted(row["receipt_ref"] for row in rows)


async def test_concurrent_creates_go_in_one_statement_each_with_its_event(
    pool: asyncpg.Pool, db_store: Store, writes: GroupCommit
) -> None:
    made = [_new_secret() for _ in range(20)]
    batches, changes = _batches("create")
    results = await _queued_together(db_store, *(_create(writes, new) for new in made))
    assert not [r for r in results if isinstance(r, BaseException)]
    after, changes_after = _batches("create")
    assert changes_after - changes == 20
    assert after - batches <= 2  # the first alone at most, then the other 19 together
    assert await pool.fetchval("SELECT count(*) FROM secrets") == 20
    assert await _events(pool, "secret.created") == sorted(new.receipt_id for new in made)
    assert await _all_chains_intact(pool) == 20


async def test_a_batch_with_a_consumed_secret_and_a_twin_is_made_one_by_one(
    pool: asyncpg.Pool, db_store: Store, writes: GroupCommit
) -> None:
    made = [_new_secret() for _ in range(10)]
    await asyncio.gather(*(_create(writes, new) for new in made))
    assert await _consume(writes, made[3])  # consumed before the batch
    fallbacks = _fallbacks("consume")
    # Every secret, and the fifth twice: the batch cannot be made whole.
    attempts = [*made, made[5]]
    results = await _queued_together(db_store, *(_consume(writes, new) for new in attempts))
    assert _fallbacks("consume") == fallbacks + 1
    assert results[3] is False
    assert {results[5], results[10]} == {False, True}  # exactly one wins the twin
    assert all(results[i] is True for i in (0, 1, 2, 4, 6, 7, 8, 9))
    assert await pool.fetchval("SELECT count(*) FROM secrets") == 0
    revealed = await _events(pool, "secret.revealed")
    assert revealed == sorted(new.receipt_id for new in made)  # one event per secret
    states = await pool.fetch("SELECT DISTINCT state FROM receipts")
    assert [row["state"] for row in states] == ["received"]
    assert await _all_chains_intact(pool) == 20


async def test_consumes_that_can_all_be_made_share_one_statement(
    pool: asyncpg.Pool, db_store: Store, writes: GroupCommit
) -> None:
    made = [_new_secret() for _ in range(12)]
    await asyncio.gather(*(_create(writes, new) for new in made))
    batches, fallbacks = _batches("consume")[0], _fallbacks("consume")
    results = await _queued_together(db_store, *(_consume(writes, new) for new in made))
    assert results == [True] * 12
    assert _batches("consume")[0] - batches <= 2
    assert _fallbacks("consume") == fallbacks
    assert await _events(pool, "secret.revealed") == sorted(new.receipt_id for new in made)


async def test_a_batch_of_consumes_takes_each_secrets_guesses_with_it(
    pool: asyncpg.Pool, db_store: Store, writes: GroupCommit
) -> None:
    # Guesses are only ever made at secrets with a passphrase, and only theirs are looked
    # up (store.lockouts.guesses_dropped).
    made = [replace(_new_secret(), passphrase_salt=os.urandom(16)) for _ in range(6)]
    await asyncio.gather(*(_create(writes, new) for new in made))
    for new in made:
        await pool.execute(
            "INSERT INTO passphrase_attempts (secret_id, client_ref) VALUES ($1, 'a')",
            new.secret_id,
        )
        await pool.execute(
            "INSERT INTO passphrase_lockouts (secret_id, client_ref, locked_until) "
            "VALUES ($1, 'a', now() + interval '1 hour')",
            new.secret_id,
        )
    batches = _batches("consume")[0]
    results = await _queued_together(db_store, *(_consume(writes, new) for new in made[:5]))
    assert results == [True] * 5
    assert _batches("consume")[0] - batches <= 2
    for table in ("passphrase_attempts", "passphrase_lockouts"):
        left = await pool.fetch(f"SELECT secret_id FROM {table}")  # noqa: S608  # constant
        assert [row["secret_id"] for row in left] == [made[5].secret_id]  # the live one's


async def test_receipt_reads_in_a_batch_each_get_their_receipt_and_event(
    pool: asyncpg.Pool, db_store: Store, writes: GroupCommit
) -> None:
    made = [_new_secret() for _ in range(6)]
    await asyncio.gather(*(_create(writes, new) for new in made))
    fallbacks = _fallbacks("receipt_read")
    # The first receipt read twice: both reads are answered and recorded.
    wanted = [new.receipt_id for new in made] + [made[0].receipt_id]
    results = await _queued_together(db_store, *(_read(writes, ref) for ref in wanted))
    assert _fallbacks("receipt_read") == fallbacks
    assert [r.id for r in results if isinstance(r, store.Receipt)] == wanted
    assert await _events(pool, "receipt.viewed") == sorted(wanted)

    # An unknown receipt in the batch: it gets None and no event; the others as before.
    unknown = os.urandom(32)
    results = await _queued_together(db_store, *(_read(writes, ref) for ref in [unknown, *wanted]))
    assert _fallbacks("receipt_read") == fallbacks + 1
    assert results[0] is None
    assert [r.id for r in results[1:] if isinstance(r, store.Receipt)] == wanted
    assert await _events(pool, "receipt.viewed") == sorted(wanted * 2)
    assert await _all_chains_intact(pool) == 6 + 2 * len(wanted)


async def test_a_change_that_fails_alone_does_not_take_the_batch_down(
    pool: asyncpg.Pool, db_store: Store, writes: GroupCommit
) -> None:
    good = [_new_secret() for _ in range(5)]
    clash = good[2]  # the same ids again: whichever of the twins comes second breaks a key
    results = await _queued_together(db_store, *(_create(writes, new) for new in [*good, clash]))
    # After the batch fails, the twins go alone at once, on two connections: which one's
    # insert reaches PostgreSQL first is a race (a CI run saw the later one win).
    failed = [r for r in (results[2], results[-1]) if isinstance(r, BaseException)]
    assert len(failed) == 1
    assert isinstance(failed[0], asyncpg.UniqueViolationError)
    others = results[:2] + results[3:-1]
    assert not [r for r in others if isinstance(r, BaseException)]
    assert await pool.fetchval("SELECT count(*) FROM secrets") == 5
    assert await _events(pool, "secret.created") == sorted(new.receipt_id for new in good)
    assert await _all_chains_intact(pool) == 5


async def test_counts_in_one_batch_are_each_what_they_would_be_one_after_another(
    pool: asyncpg.Pool, db_store: Store
) -> None:
    counts = Counts(db_store, in_flight=1)
    office, home = Count(b"office", "create_secret", 60), Count(b"home", "create_secret", 60)
    asked = [office, home, office, office, home] * 6  # 18 from the office, 12 from home
    batches = _batches("rate_count")[0]
    hits = await _queued_together(db_store, *(counts.hit(count) for count in asked))
    assert _batches("rate_count")[0] - batches <= 2
    seen: dict[bytes, list[int]] = {b"office": [], b"home": []}
    for count, hit in zip(asked, hits, strict=True):
        assert not isinstance(hit, BaseException)
        seen[count.client_ref].append(hit.hits)
        assert 0 < hit.retry_after <= 60
    assert seen == {b"office": list(range(1, 19)), b"home": list(range(1, 13))}
    stored = await pool.fetch("SELECT client_ref, hits FROM rate_counters ORDER BY client_ref")
    assert [(row["client_ref"], row["hits"]) for row in stored] == [(b"home", 12), (b"office", 18)]


async def test_events_alone_in_one_batch_each_get_their_row(
    pool: asyncpg.Pool, db_store: Store, writes: GroupCommit
) -> None:
    refs = [os.urandom(32) for _ in range(15)]
    batches = _batches("event")[0]
    done = await _queued_together(
        db_store, *(writes.record(_event("secret.viewed", ref)) for ref in refs)
    )
    assert done == [None] * 15
    assert _batches("event")[0] - batches <= 2
    assert await _events(pool, "secret.viewed") == sorted(refs)
    assert await _all_chains_intact(pool) == 15


async def test_first_reads_in_one_batch_each_find_their_secret_and_count(
    pool: asyncpg.Pool, db_store: Store, writes: GroupCommit
) -> None:
    made = [_new_secret() for _ in range(8)]
    await asyncio.gather(*(_create(writes, new) for new in made))
    counts = Counts(db_store, in_flight=1)
    office = Count(b"office", "show_secret", 60)
    wanted = [new.secret_id for new in made] + [os.urandom(32), made[0].secret_id]
    batches = _batches("peek_count")[0]
    results = await _queued_together(db_store, *(counts.peek(ref, office) for ref in wanted))
    assert _batches("peek_count")[0] - batches <= 2
    found: list[bytes | None] = []
    for n, result in enumerate(results, start=1):
        assert not isinstance(result, BaseException)
        hit, live = result
        assert hit.hits == n  # counted in order, unknown secrets too
        found.append(None if live is None else live.id)
    assert found == [*wanted[:8], None, made[0].secret_id]
    assert await pool.fetchval("SELECT hits FROM rate_counters") == 10


async def test_a_member_whose_row_is_held_waits_alone_and_the_batch_goes_on(
    pool: asyncpg.Pool, db_store: Store, writes: GroupCommit
) -> None:
    held, *free = [_new_secret() for _ in range(4)]
    await asyncio.gather(*(_create(writes, new) for new in [held, *free]))
    async with pool.acquire() as holder:
        lock = holder.transaction()
        await lock.start()
        await holder.execute("SELECT 1 FROM secrets WHERE id = $1 FOR UPDATE", held.secret_id)
        waiting = asyncio.ensure_future(_consume(writes, held))
        others = [asyncio.ensure_future(_consume(writes, new)) for new in free]
        # The others are made (in the batch, or after it fell back) while the row is held.
        assert await asyncio.wait_for(asyncio.gather(*others), 5) == [True] * 3
        assert not waiting.done()
        await lock.rollback()
    assert await asyncio.wait_for(waiting, 5) is True
    assert await _events(pool, "secret.revealed") == sorted(new.receipt_id for new in [held, *free])
    assert await _all_chains_intact(pool) == 8


async def test_a_lone_consume_of_a_held_row_waits_for_it_and_is_not_told_it_is_gone(
    pool: asyncpg.Pool, writes: GroupCommit
) -> None:
    held = _new_secret()
    await _create(writes, held)
    async with pool.acquire() as holder:
        lock = holder.transaction()
        await lock.start()
        await holder.execute("SELECT 1 FROM secrets WHERE id = $1 FOR UPDATE", held.secret_id)
        waiting = asyncio.ensure_future(_consume(writes, held))
        await asyncio.sleep(0.5)
        assert not waiting.done()  # the batch skipped the row; alone, it waits
        await lock.rollback()
    assert await asyncio.wait_for(waiting, 5) is True


async def test_a_batch_fills_the_outbox_for_each_of_its_events_in_order(
    pool: asyncpg.Pool, db_store: Store, writes: GroupCommit
) -> None:
    # The outbox trigger runs once per statement (migration 0007) over all its rows.
    await pool.execute(
        "INSERT INTO customers (custid, plan, token_digest, notify_sender, webhook_url)"
        " VALUES ('alice@example.com', 'basic', '\\x00', true, 'https://hooks.example/x')"
    )
    mine = [replace(_new_secret(), custid="alice@example.com") for _ in range(6)]
    anonymous = [_new_secret() for _ in range(4)]
    made = [mine[0], *anonymous[:2], *mine[1:4], *anonymous[2:], *mine[4:]]
    await _queued_together(db_store, *(_create(writes, new) for new in made))
    await _queued_together(db_store, *(_consume(writes, new) for new in made))
    rows = await pool.fetch(
        "SELECT n.event, n.channel, n.receipt_ref, n.event_id, e.id AS audit_id"
        "  FROM notifications n JOIN audit_events e"
        "    ON e.receipt_ref = n.receipt_ref AND e.event = n.event ORDER BY n.id"
    )
    created = [r for r in rows if r["event"] == "secret.created"]
    revealed = [r for r in rows if r["event"] == "secret.revealed"]
    # A webhook for each event of the account's secrets, and mail for reveals; nothing for
    # anonymous secrets; in the order of the audit rows.
    assert [r["receipt_ref"] for r in created] == [new.receipt_id for new in mine]
    assert {r["channel"] for r in created} == {"webhook"}
    assert [(r["receipt_ref"], r["channel"]) for r in revealed] == [
        (new.receipt_id, channel) for new in mine for channel in ("webhook", "email")
    ]
    audit_ids = [r["audit_id"] for r in rows]
    assert audit_ids == sorted(audit_ids)
    for r in rows:
        assert r["event_id"] == uuid.UUID(
            hashlib.md5(f"ots.event/{r['audit_id']}".encode(), usedforsecurity=False).hexdigest()
        )


async def test_a_batch_whose_head_moved_is_made_one_by_one_and_the_chain_holds(
    pool: asyncpg.Pool, db_store: Store
) -> None:
    # Two processes on the same chain: the second moves the head the first has in memory.
    first, second = Chains([5]), Chains([5])
    writes = GroupCommit(db_store, first, KEY, in_flight=1)
    await _create(writes, _new_secret())  # `first` now knows chain 5's head
    other = _new_secret()
    async with pool.acquire() as db:
        await store.insert_pair(
            second.bound(db, KEY, _event("secret.created", other.receipt_id)), other
        )
    fallbacks = _fallbacks("create")
    made = [_new_secret() for _ in range(5)]
    results = await _queued_together(db_store, *(_create(writes, new) for new in made))
    assert not [r for r in results if isinstance(r, BaseException)]
    assert _fallbacks("create") == fallbacks + 1
    assert await pool.fetchval("SELECT count(*) FROM secrets") == 7
    assert await _all_chains_intact(pool) == 7


async def test_writes_no_batch_takes_in_time_get_503s_and_nothing_of_theirs_is_written(
    pool: asyncpg.Pool,
) -> None:
    quick = Store(pool, 0.3)  # the acquire bound, which is also the queue's
    writes = GroupCommit(quick, Chains([11]), KEY, in_flight=1)
    await _create(writes, _new_secret())
    first, *queued = [_new_secret() for _ in range(5)]
    async with pool.acquire() as holder:
        lock = holder.transaction()
        await lock.start()
        await holder.execute("SELECT 1 FROM audit_heads WHERE part = 11 FOR UPDATE")
        running = asyncio.ensure_future(_create(writes, first))
        await asyncio.sleep(0.1)  # its batch waits on the head the holder locked
        loop = asyncio.get_running_loop()
        started = loop.time()
        results = await asyncio.wait_for(
            asyncio.gather(*(_create(writes, new) for new in queued), return_exceptions=True), 5
        )
        waited = loop.time() - started
        assert all(isinstance(r, StoreUnavailable) for r in results), results
        assert waited < 2.0  # the queue's bound, not the running batch's wait
        assert not running.done()
        await lock.rollback()
    await asyncio.wait_for(running, 5)
    assert await pool.fetchval("SELECT count(*) FROM secrets") == 2


async def test_a_lock_timeout_in_a_batch_rolls_it_back_and_each_is_made_alone(
    fresh_url: str,
) -> None:
    settings = {"lock_timeout": "500"}
    async with asyncpg.create_pool(
        fresh_url, min_size=0, max_size=POOL, server_settings=settings
    ) as pool:
        db_store = Store(pool, 5.0)
        writes = GroupCommit(db_store, Chains([9]), KEY, in_flight=1)
        await _create(writes, _new_secret())
        fallbacks = _fallbacks("create")
        made = [_new_secret() for _ in range(4)]
        async with pool.acquire() as holder:
            lock = holder.transaction()
            await lock.start()
            await holder.execute("SELECT 1 FROM audit_heads WHERE part = 9 FOR UPDATE")
            tasks = [asyncio.ensure_future(_create(writes, new)) for new in made]
            await asyncio.sleep(0.75)  # the batch gave up at 0.5 s; alone, they wait anew
            await lock.rollback()
        results = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 10)
        assert not [r for r in results if isinstance(r, BaseException)], results
        assert _fallbacks("create") == fallbacks + 1
        assert await pool.fetchval("SELECT count(*) FROM secrets") == 5
        assert await _all_chains_intact(pool) == 5


async def test_one_change_written_alone_and_in_a_batch_writes_the_same_rows(
    pool: asyncpg.Pool, db_store: Store, writes: GroupCommit
) -> None:
    # The batch statement is a second text of the single one: their rows must not drift.
    alone = replace(_new_secret(), custid="alice@example.com", passphrase_salt=b"s" * 16)
    async with pool.acquire() as db:
        event = _event("secret.created", alone.receipt_id)
        await store.insert_pair(Chains([1]).bound(db, KEY, event), alone)
    batched = [replace(alone, secret_id=os.urandom(32), receipt_id=os.urandom(32)) for _ in "ab"]
    fallbacks = _fallbacks("create")
    results = await _queued_together(db_store, *(_create(writes, new) for new in batched))
    assert not [r for r in results if isinstance(r, BaseException)], results
    assert _fallbacks("create") == fallbacks  # both went in the batch statement
    ignored = {"id", "secret_id", "receipt_id", "created_at", "updated_at", "expires_at"}

    async def row(table: str, column: str, value: bytes) -> dict[str, object]:
        found = await pool.fetchrow(f"SELECT * FROM {table} WHERE {column} = $1", value)  # noqa: S608
        assert found is not None
        return {k: v for k, v in found.items() if k not in ignored}

    assert await row("receipts", "id", alone.receipt_id) == await row(
        "receipts", "id", batched[0].receipt_id
    )
    assert await row("secrets", "id", alone.secret_id) == await row(
        "secrets", "id", batched[0].secret_id
    )
