"""A secret's passphrase guesses (attempts and lockouts) go in the same statement that
removes the secret, whichever removes it: a reveal, a burn, a batch of them, the sweeper.
There is no cascade behind it (migration 0009), so each path is checked here."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import asyncpg
import pytest
from prometheus_client import REGISTRY

from app.expiry import sweep
from app.keys import SERVICES
from app.store import expiry
from tests.factories import Client, burn, conceal, reveal

RIGHT = "correct-horse-1"
WRONG = "wrong-pass-1"

SECRET_IDS = "SELECT id FROM secrets ORDER BY created_at"
GUESSES = """
SELECT (SELECT count(*) FROM passphrase_attempts WHERE secret_id = $1)
     + (SELECT count(*) FROM passphrase_lockouts WHERE secret_id = $1)
"""


async def _guessed(client: Client, db: asyncpg.Connection, value: str) -> tuple[str, str, bytes]:
    """A passphrase secret with a failed guess of this client, another client's attempt
    and a lockout of a third: its share key, receipt key and id."""
    pair = await conceal(client, value, passphrase=RIGHT)
    status, _ = await reveal(client, pair.secret_key, passphrase=WRONG)
    assert status == 422
    secret_id = (await db.fetch(SECRET_IDS))[-1]["id"]
    await db.execute(
        "INSERT INTO passphrase_attempts (secret_id, client_ref, pending) VALUES ($1, 'b', false)",
        secret_id,
    )
    await db.execute(
        "INSERT INTO passphrase_lockouts (secret_id, client_ref, locked_until) "
        "VALUES ($1, 'c', now() + interval '1 hour')",
        secret_id,
    )
    assert await db.fetchval(GUESSES, secret_id) == 3
    return pair.secret_key, pair.receipt_key, secret_id


async def test_a_reveal_takes_the_secrets_guesses_and_no_others(
    client: Client, db: asyncpg.Connection
) -> None:
    share, _, gone = await _guessed(client, db, "one")
    _, _, kept = await _guessed(client, db, "two")
    status, body = await reveal(client, share, passphrase=RIGHT)
    assert (status, body["record"]["secret_value"]) == (200, "one")
    assert await db.fetchval(GUESSES, gone) == 0
    assert await db.fetchval(GUESSES, kept) == 3


async def test_a_burn_takes_the_secrets_guesses(client: Client, db: asyncpg.Connection) -> None:
    _, receipt, gone = await _guessed(client, db, "one")
    status, body = await burn(client, receipt, passphrase=RIGHT)
    assert (status, body["record"]["state"]) == (200, "burned")
    assert await db.fetchval(GUESSES, gone) == 0


async def test_the_sweeper_takes_expired_secrets_guesses(
    client: Client, db: asyncpg.Connection
) -> None:
    _, _, first = await _guessed(client, db, "one")
    _, _, second = await _guessed(client, db, "two")
    _, _, live = await _guessed(client, db, "three")
    await db.execute(
        "UPDATE secrets SET expires_at = now() - interval '1 second' WHERE id = ANY($1)",
        [first, second],
    )
    purged = await sweep(client.app[SERVICES], batch=10)
    assert purged.secrets == 2
    assert [await db.fetchval(GUESSES, i) for i in (first, second, live)] == [0, 0, 3]


def _transactional_batches() -> float:
    sample = REGISTRY.get_sample_value("ots_sweeper_batches_total", {"path": "transaction"})
    return sample or 0.0


async def test_the_transactional_sweep_takes_guesses_too(
    client: Client, db: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, _, first = await _guessed(client, db, "one")
    _, _, second = await _guessed(client, db, "two")
    # Rows not where the read saw them send the batch the transactional way
    # (tests/test_expiry.py).
    read = expiry.expired

    async def misplaced(*args: Any) -> expiry.Expired:
        found = await read(*args)
        return dataclasses.replace(found, tids=found.tids[::-1])

    monkeypatch.setattr(expiry, "expired", misplaced)
    await db.execute("UPDATE secrets SET expires_at = now() - interval '1 second'")
    transactional = _transactional_batches()
    purged = await sweep(client.app[SERVICES], batch=10)
    assert (purged.secrets, purged.receipts_expired) == (2, 2)
    assert _transactional_batches() - transactional == 1
    assert [await db.fetchval(GUESSES, i) for i in (first, second)] == [0, 0]


async def test_a_guess_committed_while_a_reveal_waits_goes_at_the_next_sweep(
    client: Client, db: asyncpg.Connection
) -> None:
    """The reveal waits for the row, then deletes the guesses its statement's snapshot
    holds (READ COMMITTED): one committed while it waited outlives the secret, until the
    sweeper's pass removes guesses whose secret is gone."""
    pair = await conceal(client, "one")
    secret_id = (await db.fetch(SECRET_IDS))[-1]["id"]
    async with db.transaction():
        await db.execute("SELECT 1 FROM secrets WHERE id = $1 FOR UPDATE", secret_id)
        revealing = asyncio.ensure_future(reveal(client, pair.secret_key))
        await asyncio.sleep(0.5)
        assert not revealing.done()  # it waits on the row
        await db.execute(
            "INSERT INTO passphrase_attempts (secret_id, client_ref) VALUES ($1, 'late')",
            secret_id,
        )
    status, body = await asyncio.wait_for(revealing, 10)
    assert (status, body["record"]["secret_value"]) == (200, "one")
    assert await db.fetchval(GUESSES, secret_id) == 1  # left behind by the reveal
    await sweep(client.app[SERVICES], batch=10)
    assert await db.fetchval(GUESSES, secret_id) == 0
