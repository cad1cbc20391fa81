"""Passphrase attempts and lockouts, counted in PostgreSQL so every pod agrees.

An attempt is reserved *before* the passphrase is checked, under a lock on the
secret's row, so concurrent guesses are counted one by one: with a limit of 5,
exactly 5 guesses are ever checked before the lock, however many arrive at once.
A right passphrase then deletes the caller's reservations again.
"""

from __future__ import annotations

from app.config import Lockout
from app.store.db import Db

ROW_LOCK = "SELECT 1 FROM secrets WHERE id = $1 AND expires_at > now() FOR UPDATE"

# Seconds left on the longest lock that applies to this client, or NULL.
LOCKED_FOR = """
SELECT ceil(extract(epoch FROM max(locked_until) - now()))::int
  FROM passphrase_lockouts
 WHERE secret_id = $1 AND (client_ref = $2 OR client_ref IS NULL) AND locked_until > now()
"""

COUNT = """
SELECT count(*) FILTER (WHERE client_ref = $2) AS by_client, count(*) AS overall
  FROM passphrase_attempts
 WHERE secret_id = $1 AND failed_at > now() - make_interval(secs => $3::int)
"""

LOCK = """
INSERT INTO passphrase_lockouts (secret_id, client_ref, locked_until)
VALUES ($1, $2, now() + make_interval(secs => $3::int))
"""

RESERVE = "INSERT INTO passphrase_attempts (secret_id, client_ref) VALUES ($1, $2)"

CLEAR = "DELETE FROM passphrase_attempts WHERE secret_id = $1 AND client_ref = $2"


class SecretGone(Exception):
    """The secret was consumed or expired while the attempt was being reserved."""


async def reserve_attempt(
    tx: Db, secret_id: bytes, client_ref: bytes, policy: Lockout
) -> int | None:
    """Count one attempt, or return the seconds of the lock that forbids it.

    Runs in a transaction; the row lock on the secret serialises concurrent guesses.
    """
    if await tx.fetchval(ROW_LOCK, secret_id) is None:
        raise SecretGone
    locked: int | None = await tx.fetchval(LOCKED_FOR, secret_id, client_ref)
    if locked is not None:
        return locked
    counts = await tx.fetchrow(COUNT, secret_id, client_ref, policy.window_seconds)
    assert counts is not None  # noqa: S101  # an aggregate always yields one row
    if counts["overall"] >= policy.per_secret:
        await tx.execute(LOCK, secret_id, None, policy.lock_seconds)
        return policy.lock_seconds
    if counts["by_client"] >= policy.per_client:
        await tx.execute(LOCK, secret_id, client_ref, policy.lock_seconds)
        return policy.lock_seconds
    await tx.execute(RESERVE, secret_id, client_ref)
    return None


async def clear_attempts(db: Db, secret_id: bytes, client_ref: bytes) -> None:
    """A right passphrase forgives this client's earlier failures."""
    await db.execute(CLEAR, secret_id, client_ref)
