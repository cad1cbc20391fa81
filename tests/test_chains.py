"""One-statement audited writes (app/core/chains.py): a change never commits without its
events, and processes whose chains overlap (pods, or the transactional path) still
leave every chain intact. Each test gets its own database, since it counts rows."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import asyncpg
import pytest
from prometheus_client import REGISTRY

from app.core import audit
from app.core.audit import Event, chained
from app.core.chains import Chains
from app.core.trail import verify_chains
from app.store import audit as audit_store
from app.store import secrets as store
from app.store.secrets import NewSecret
from tests.conftest import throwaway_database

KEY = b"k" * 32


@pytest.fixture
def fresh_url(server_url: str) -> Iterator[str]:
    with throwaway_database(server_url, "chains") as url:
        yield url


@pytest.fixture
async def pool(fresh_url: str) -> AsyncIterator[asyncpg.Pool]:
    async with asyncpg.create_pool(fresh_url, min_size=0, max_size=10) as pool:
        yield pool


def _new_secret() -> NewSecret:
    return NewSecret(
        secret_id=os.urandom(32),
        receipt_id=os.urandom(32),
        key_id=1,
        ciphertext=os.urandom(80),
        passphrase_salt=None,
        value_bytes=40,
        share_key_sealed=os.urandom(60),
        secret_shortkey="abcdef",
        custid="anon",
        kind="conceal",
        ttl=3600,
        value_claimable=False,
        share_domain=None,
        recipients=None,
        receipt_key_sealed=None,
    )


def _created(new: NewSecret) -> Event:
    return Event("secret.created", "success", "anonymous", receipt_ref=new.receipt_id)


async def _create(pool: asyncpg.Pool, chains: Chains) -> NewSecret:
    new = _new_secret()
    async with pool.acquire() as db:
        await store.insert_pair(chains.bound(db, KEY, _created(new)), new)
    return new


async def _record_in_transaction(pool: asyncpg.Pool, n: int) -> None:
    """The transactional path, on any chain: it moves heads the Chains do not know of."""
    async with pool.acquire() as db, db.transaction():
        await audit.record(db, KEY, [Event("test.tx", "success", "system", detail=str(n))])


async def _all_chains_intact(pool: asyncpg.Pool) -> int:
    async with pool.acquire() as db, db.transaction():
        checked, broken = await verify_chains(db, KEY)
    assert broken is None, str(broken)
    return checked


async def test_overlapping_writers_lose_nothing_and_keep_every_chain_intact(
    pool: asyncpg.Pool,
) -> None:
    # Two "pods" on the same two chains, plus transactional writers on all 64: heads move
    # under each pod's memory all the time.
    pods = [Chains([0, 1]), Chains([0, 1])]
    moved_before = _moved()
    created = await asyncio.gather(
        *(_create(pool, pods[n % 2]) for n in range(200)),
        *(_record_in_transaction(pool, n) for n in range(40)),
    )
    made = [new for new in created if new is not None]
    async with pool.acquire() as db:
        secrets = await db.fetchval("SELECT count(*) FROM secrets")
        events = await db.fetch(
            "SELECT receipt_ref FROM audit_events WHERE event = 'secret.created'"
        )
        in_tx = await db.fetchval("SELECT count(*) FROM audit_events WHERE event = 'test.tx'")
    assert secrets == len(made) == 200
    assert sorted(e["receipt_ref"] for e in events) == sorted(new.receipt_id for new in made)
    assert in_tx == 40
    assert await _all_chains_intact(pool) == 240
    retried = {label: _moved()[label] - moved_before[label] for label in moved_before}
    print(f"retries after the head moved: {retried}")
    assert retried["optimistic"] > 0  # the conflicts this test is about did happen


def _moved() -> dict[str, float]:
    sample = "ots_audit_head_moved_total"
    return {
        label: REGISTRY.get_sample_value(sample, {"next_try": label}) or 0.0
        for label in ("optimistic", "locked")
    }


@pytest.mark.parametrize("stale", ["seq", "hash"])
async def test_a_stale_head_aborts_the_change_with_its_events(
    pool: asyncpg.Pool, stale: str
) -> None:
    chains = Chains([3])
    await _create(pool, chains)  # the head of chain 3 is now at seq 1
    new = _new_secret()
    at = datetime.now(UTC)
    # "seq": chained from seq 0, as if the first write had not happened; "hash": the right
    # seq but a hash the database never had (a memory ahead of a rolled-back write).
    head = (0, audit.genesis(3)) if stale == "seq" else (1, b"\x00" * 32)
    [row] = chained(KEY, 3, head, at, [_created(new)])
    async with pool.acquire() as db:
        with pytest.raises(asyncpg.SerializationError):
            await db.fetch(
                store.INSERT_PAIR,
                *store.pair_args(new),
                *audit_store.audited_args(row, head[1]),
            )
        assert await db.fetchval("SELECT count(*) FROM secrets WHERE id = $1", new.secret_id) == 0
        assert await db.fetchval("SELECT count(*) FROM receipts WHERE id = $1", new.receipt_id) == 0
        assert await db.fetchval("SELECT seq FROM audit_heads WHERE part = 3") == 1
    assert await _all_chains_intact(pool) == 1


async def test_a_write_in_a_callers_transaction_retries_without_aborting_it(
    pool: asyncpg.Pool,
) -> None:
    # A create with a recipient writes its pair inside a transaction with the mail. When
    # the head moved, the failed try must not abort that transaction (found by fuzzing).
    ours, theirs = Chains([9]), Chains([9])
    await _create(pool, ours)  # ours now remembers the head at seq 1
    await _create(pool, theirs)  # ...which theirs moves to seq 2
    new = _new_secret()
    async with pool.acquire() as db:
        async with db.transaction():
            await store.insert_pair(ours.bound(db, KEY, _created(new)), new)
            await db.execute("SELECT 1")  # the caller's transaction is still usable
        assert await db.fetchval("SELECT count(*) FROM secrets WHERE id = $1", new.secret_id) == 1
    assert await _all_chains_intact(pool) == 3


async def test_work_that_does_nothing_records_nothing(pool: asyncpg.Pool) -> None:
    chains = Chains([7])
    new = await _create(pool, chains)
    revealed = Event("secret.revealed", "success", "anonymous", receipt_ref=new.receipt_id)
    async with pool.acquire() as db:
        run = chains.bound(db, KEY, revealed)
        assert await store.consume_secret(run, new.secret_id, "received") is True
        assert await store.consume_secret(run, new.secret_id, "received") is False
        kinds = await db.fetch("SELECT event FROM audit_events ORDER BY part, seq")
    assert [k["event"] for k in kinds] == ["secret.created", "secret.revealed"]
    assert await _all_chains_intact(pool) == 2
