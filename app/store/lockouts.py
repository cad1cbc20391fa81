"""Passphrase failures and lockouts, counted in PostgreSQL so every pod agrees."""

from __future__ import annotations

from app.config import Lockout
from app.store.db import Db

# Seconds left on the longest lock that applies to this client, or NULL.
LOCKED_FOR = """
SELECT ceil(extract(epoch FROM max(locked_until) - now()))::int
  FROM passphrase_lockouts
 WHERE secret_id = $1 AND (client_ref = $2 OR client_ref IS NULL) AND locked_until > now()
"""

# Records the failure and, in the same statement, locks the client (5 in the window)
# or the whole secret (20 in the window, from any clients).
RECORD_FAILURE = """
WITH failure AS (
    INSERT INTO passphrase_attempts (secret_id, client_ref) VALUES ($1, $2)
),
counts AS (
    SELECT count(*) FILTER (WHERE client_ref = $2) + 1 AS by_client, count(*) + 1 AS overall
      FROM passphrase_attempts
     WHERE secret_id = $1 AND failed_at > now() - make_interval(secs => $3::int)
)
INSERT INTO passphrase_lockouts (secret_id, client_ref, locked_until)
SELECT $1, CASE WHEN overall >= $5::int THEN NULL ELSE $2::bytea END,
       now() + make_interval(secs => $6::int)
  FROM counts
 WHERE by_client >= $4::int OR overall >= $5::int
RETURNING locked_until
"""

CLEAR = "DELETE FROM passphrase_attempts WHERE secret_id = $1 AND client_ref = $2"


async def locked_for(db: Db, secret_id: bytes, client_ref: bytes) -> int | None:
    """Seconds until this client may try this secret's passphrase again, if locked."""
    seconds: int | None = await db.fetchval(LOCKED_FOR, secret_id, client_ref)
    return seconds


async def record_failure(db: Db, secret_id: bytes, client_ref: bytes, policy: Lockout) -> bool:
    """Count a wrong passphrase; True when this failure started a lock."""
    row = await db.fetchrow(
        RECORD_FAILURE,
        secret_id,
        client_ref,
        policy.window_seconds,
        policy.per_client,
        policy.per_secret,
        policy.lock_seconds,
    )
    return row is not None


async def clear_failures(db: Db, secret_id: bytes, client_ref: bytes) -> None:
    await db.execute(CLEAR, secret_id, client_ref)
