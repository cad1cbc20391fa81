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
SELECT gone.receipt_id, marked.id IS NOT NULL AS marked
  FROM gone LEFT JOIN marked ON marked.id = gone.receipt_id
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
    expired_receipt_ids: tuple[bytes, ...] = ()  # receipts this batch marked expired


async def purge_expired(tx: Db, batch: int) -> Purged:
    """One batch of each kind; the caller repeats while a batch comes back full."""
    rows = await tx.fetch(PURGE_SECRETS, batch)
    deleted = await tx.execute(PURGE_RECEIPTS, batch)
    await tx.execute(PURGE_LOCKOUTS)
    await tx.execute(PURGE_COUNTERS)
    expired = tuple(row["receipt_id"] for row in rows if row["marked"])
    return Purged(
        secrets=len(rows),
        receipts_expired=len(expired),
        receipts_deleted=int(deleted.split()[-1]),
        expired_receipt_ids=expired,
    )
