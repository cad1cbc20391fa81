"""Passphrase attempts and lockouts, counted in PostgreSQL so every pod agrees.

An attempt is reserved *before* the passphrase is checked, under a lock on the
secret's row, and reservations still being checked count against the limit. So
with a limit of 5, exactly 5 guesses are ever checked before the lock, however
many arrive at once; the rest wait for a free slot or are turned away.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.config import Lockout
from app.store.db import Db
from app.store.live import alive

ROW_LOCK = f"SELECT 1 FROM secrets s WHERE s.id = $1 AND {alive('s')} FOR UPDATE"  # noqa: S608

# Seconds left on the longest lock that applies to this client, or NULL.
LOCKED_FOR = """
SELECT ceil(extract(epoch FROM max(locked_until) - now()))::int
  FROM passphrase_lockouts
 WHERE secret_id = $1 AND (client_ref = $2 OR client_ref IS NULL) AND locked_until > now()
"""

COUNT = """
SELECT count(*) FILTER (WHERE client_ref = $2 AND NOT pending) AS client_failed,
       count(*) FILTER (WHERE NOT pending) AS all_failed,
       count(*) FILTER (WHERE client_ref = $2) AS client_total,
       count(*) AS all_total
  FROM passphrase_attempts
 WHERE secret_id = $1 AND failed_at > now() - make_interval(secs => $3::int)
"""

LOCK = """
INSERT INTO passphrase_lockouts (secret_id, client_ref, locked_until)
VALUES ($1, $2, now() + make_interval(secs => $3::int))
"""

RESERVE = "INSERT INTO passphrase_attempts (secret_id, client_ref) VALUES ($1, $2) RETURNING id"
FAIL = "UPDATE passphrase_attempts SET pending = false, failed_at = now() WHERE id = $1"
# A right passphrase forgives this client's failures (other guesses still in flight keep
# their reservations).
FORGIVE = """
DELETE FROM passphrase_attempts
 WHERE secret_id = $1 AND client_ref = $2 AND (NOT pending OR id = $3)
"""


def guesses_dropped(gone: str) -> str:
    """CTE definitions that delete the attempts and lockouts of the secrets `gone` (a CTE
    with their `id`s, and `guarded` as GUARDED gives it) removed, in the same statement.
    Every statement that removes a secret has them, in place of a cascade: migration 0009.
    Looked up by key, not joined: a generic plan may join by reading all of `gone` for
    each guess; the array of keys goes through the index once guesses are many
    (tests/test_sweeper_plan.py).

    Only a secret with a passphrase can have guesses (app/core/unlock.py reserves none
    for the others, and a secret is never updated), so only theirs are looked up. Looking
    up every secret's was 7 % of PostgreSQL's time in a sweep of secrets without one: an
    index probe a secret, for nothing (bench/FINDINGS.md, fifteenth round)."""
    return f"""attempts_dropped AS (
    DELETE FROM passphrase_attempts
     WHERE secret_id = ANY(ARRAY(SELECT id FROM {gone} WHERE guarded))
), lockouts_dropped AS (
    DELETE FROM passphrase_lockouts
     WHERE secret_id = ANY(ARRAY(SELECT id FROM {gone} WHERE guarded))
)"""  # noqa: S608  # `gone` is a CTE name of ours


def guarded(alias: str) -> str:
    """What a statement's `gone` returns beside `id` for guesses_dropped: whether the
    secret (table alias `alias`) had a passphrase."""
    return f"{alias}.passphrase_salt IS NOT NULL AS guarded"


class SecretGone(Exception):
    """The secret was consumed or expired while the attempt was being reserved."""


@dataclass(frozen=True)
class Reservation:
    attempt_id: int | None = None  # set: go ahead and check the passphrase
    locked_for: int | None = None  # set: locked out for this many seconds
    new_lock: bool = False  # this very attempt started the lock
    # Neither: every slot is taken by guesses still being checked; try again shortly.


async def reserve_attempt(
    tx: Db, secret_id: bytes, client_ref: bytes, policy: Lockout
) -> Reservation:
    """Runs in a transaction; the row lock on the secret serialises concurrent guesses."""
    if await tx.fetchval(ROW_LOCK, secret_id) is None:
        raise SecretGone
    locked: int | None = await tx.fetchval(LOCKED_FOR, secret_id, client_ref)
    if locked is not None:
        return Reservation(locked_for=locked)
    counts = await tx.fetchrow(COUNT, secret_id, client_ref, policy.window_seconds)
    assert counts is not None  # noqa: S101  # an aggregate always yields one row
    if counts["all_failed"] >= policy.per_secret:
        return await _lock(tx, secret_id, None, policy)
    if counts["client_failed"] >= policy.per_client:
        return await _lock(tx, secret_id, client_ref, policy)
    if counts["client_total"] >= policy.per_client or counts["all_total"] >= policy.per_secret:
        return Reservation()
    return Reservation(attempt_id=await tx.fetchval(RESERVE, secret_id, client_ref))


async def _lock(tx: Db, secret_id: bytes, client_ref: bytes | None, policy: Lockout) -> Reservation:
    await tx.execute(LOCK, secret_id, client_ref, policy.lock_seconds)
    return Reservation(locked_for=policy.lock_seconds, new_lock=True)


async def settle_failure(db: Db, attempt_id: int) -> None:
    await db.execute(FAIL, attempt_id)


async def forgive(db: Db, secret_id: bytes, client_ref: bytes, attempt_id: int) -> None:
    await db.execute(FORGIVE, secret_id, client_ref, attempt_id)
