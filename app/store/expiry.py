"""Reclaiming expired rows in batches, safe with one sweeper per pod."""

from __future__ import annotations

from dataclasses import dataclass

from app.store.db import Db

# SKIP LOCKED: rows another pod's sweeper (or a reveal in flight) holds are left to
# it, so many sweepers never wait on each other or hand out two outcomes for one row.
PURGE_SECRETS = """
WITH doomed AS (
    SELECT id FROM secrets WHERE expires_at <= now()
     ORDER BY expires_at LIMIT $1 FOR UPDATE SKIP LOCKED
),
gone AS (
    DELETE FROM secrets s USING doomed WHERE s.id = doomed.id RETURNING s.receipt_id, s.expires_at
),
marked AS (
    UPDATE receipts r
       SET state = 'expired', expired_at = gone.expires_at, share_key_sealed = NULL,
           updated_at = now()
      FROM gone
     WHERE r.id = gone.receipt_id AND r.state = 'new'
    RETURNING r.id
)
SELECT (SELECT count(*) FROM gone)::int AS secrets, (SELECT count(*) FROM marked)::int AS receipts
"""

PURGE_RECEIPTS = """
WITH doomed AS (
    SELECT id FROM receipts WHERE expires_at <= now()
     ORDER BY expires_at LIMIT $1 FOR UPDATE SKIP LOCKED
)
DELETE FROM receipts r USING doomed WHERE r.id = doomed.id
"""

PURGE_LOCKOUTS = "DELETE FROM passphrase_lockouts WHERE locked_until <= now()"
# Rate windows last at most a day (OTS_RATE_WINDOW's ceiling), so older counters are dead.
PURGE_COUNTERS = "DELETE FROM rate_counters WHERE window_start < now() - interval '1 day'"


@dataclass(frozen=True)
class Purged:
    secrets: int
    receipts_expired: int
    receipts_deleted: int


async def purge_expired(db: Db, batch: int) -> Purged:
    """One batch of each kind; the caller repeats while a batch comes back full."""
    row = await db.fetchrow(PURGE_SECRETS, batch)
    assert row is not None  # noqa: S101  # an aggregate SELECT always yields one row
    deleted = await db.execute(PURGE_RECEIPTS, batch)
    await db.execute(PURGE_LOCKOUTS)
    await db.execute(PURGE_COUNTERS)
    return Purged(
        secrets=row["secrets"],
        receipts_expired=row["receipts"],
        receipts_deleted=int(deleted.split()[-1]),
    )
