"""The notification outbox's SQL: enqueue, claim due rows under a lease, settle them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from app.store.db import Db


@dataclass(frozen=True)
class Notification:
    id: int
    event_id: uuid.UUID
    channel: str
    event: str
    receipt_ref: bytes
    secret_shortkey: str | None
    custid: str
    key_id: int | None
    payload_sealed: bytes | None
    attempts: int  # including the one just claimed
    occurred_at: datetime


# SKIP LOCKED: workers in every process never wait on each other or take the same row.
# The lease (not the row lock, which ends at commit) keeps the row from other workers
# while it is delivered outside any transaction; a worker that dies leaves a lease that
# runs out, and the row is taken again.
CLAIM = """
UPDATE notifications n
   SET lease_until = now() + make_interval(secs => $2), attempts = n.attempts + 1
  FROM (SELECT id FROM notifications
         WHERE state = 'pending' AND next_attempt_at <= now()
           AND (lease_until IS NULL OR lease_until < now())
         ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED) due
 WHERE n.id = due.id
RETURNING n.id, n.event_id, n.channel, n.event, n.receipt_ref, n.secret_shortkey, n.custid,
          n.key_id, n.payload_sealed, n.attempts, n.occurred_at
"""

# Settling checks the attempt, so a worker whose lease ran out (and whose row another
# worker took meanwhile) cannot settle it a second time.
DELIVERED = """
UPDATE notifications
   SET state = 'delivered', delivered_at = now(), lease_until = NULL, payload_sealed = NULL,
       last_error = NULL
 WHERE id = $1 AND attempts = $2 AND state = 'pending'
RETURNING id
"""
RETRY = """
UPDATE notifications
   SET next_attempt_at = now() + make_interval(secs => $3), lease_until = NULL, last_error = $4
 WHERE id = $1 AND attempts = $2 AND state = 'pending'
RETURNING id
"""
DEAD = """
UPDATE notifications
   SET state = 'dead', lease_until = NULL, payload_sealed = NULL, last_error = $3
 WHERE id = $1 AND attempts = $2 AND state = 'pending'
RETURNING id
"""
PURGE = """
DELETE FROM notifications WHERE id IN (
    SELECT id FROM notifications
     WHERE state <> 'pending' AND created_at < now() - make_interval(secs => $1)
     LIMIT $2)
"""
ERROR_CHARS = 300


async def claim_due(db: Db, limit: int, lease_seconds: float) -> list[Notification]:
    return [Notification(**row) for row in await db.fetch(CLAIM, limit, lease_seconds)]


async def mark_delivered(db: Db, note: Notification) -> bool:
    return await db.fetchval(DELIVERED, note.id, note.attempts) is not None


async def schedule_retry(db: Db, note: Notification, delay: float, error: str) -> bool:
    found = await db.fetchval(RETRY, note.id, note.attempts, delay, error[:ERROR_CHARS])
    return found is not None


async def mark_dead(db: Db, note: Notification, error: str) -> bool:
    return await db.fetchval(DEAD, note.id, note.attempts, error[:ERROR_CHARS]) is not None


async def purge_settled(db: Db, older_than_seconds: float, batch: int) -> int:
    status = await db.execute(PURGE, older_than_seconds, batch)
    return int(status.split()[-1])
