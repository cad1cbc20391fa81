"""Request counting per client and event in fixed windows, shared by every pod."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from app.store.db import Db

# One upsert per request: no read-then-write, so concurrent requests never lose a hit.
# Windows are aligned on the epoch so every pod puts a request in the same window.
_HIT = """
w AS (
    SELECT to_timestamp(floor(extract(epoch FROM now()) / ${window}::int) * ${window}::int)
           AS start
),
hit AS (
    INSERT INTO rate_counters (client_ref, event, window_start, hits)
    SELECT ${ref}, ${event}, w.start, 1 FROM w
    ON CONFLICT (client_ref, event, window_start) DO UPDATE SET hits = rate_counters.hits + 1
    RETURNING hits,
              ceil(extract(epoch FROM window_start + make_interval(secs => ${window}::int)
                                   - now()))::int AS retry_after
)"""
HIT = "WITH " + _HIT.format(ref=1, event=2, window=3) + "\nSELECT hits, retry_after FROM hit"


def counted(read: str, read_params: int) -> str:
    """`read` (a SELECT using $1 to $read_params) behind this request's count, in one
    round trip: the hit's columns, then the read's (NULL if it found nothing). Its last
    three parameters are hit()'s.

    Only in front of reads. In the statement of a logged write, the count would keep the
    client's counter row locked until that write's commit had flushed the WAL, and every
    request of one client (an office behind one NAT address) would queue on it: tried
    for creates, and the backend-kill test's stalled writes fell to five a second."""
    n = read_params
    hit = _HIT.format(ref=n + 1, event=n + 2, window=n + 3)
    return f"WITH {hit}\nSELECT hit.*, found.* FROM hit LEFT JOIN ({read}) found ON true"


@dataclass(frozen=True)
class Hit:
    hits: int
    retry_after: int  # seconds until this window ends


async def hit(db: Db, client_ref: bytes, event: str, window_seconds: int) -> Hit:
    row = await db.fetchrow(HIT, client_ref, event, window_seconds)
    assert row is not None  # noqa: S101  # INSERT ... RETURNING always yields the row
    return hit_of(row)


def hit_of(row: asyncpg.Record) -> Hit:
    return Hit(hits=row["hits"], retry_after=max(row["retry_after"], 1))
