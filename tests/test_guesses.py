"""A secret's passphrase guesses (attempts and lockouts) go in the same statement that
removes the secret, whichever removes it: a reveal, a burn, a batch of them, the sweeper.
There is no cascade behind it (migration 0009), so each path is checked here."""

from __future__ import annotations

import asyncpg

from app.expiry import sweep
from app.keys import SERVICES
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
