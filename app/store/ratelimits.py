"""Request counting per client and event in fixed windows, shared by every pod."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from app.store.db import Db, as_columns

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


# Many requests' counts in one statement (app/core/counts.Counts): each gets the count
# it would have had, counted one after another in the batch's order. Counters are
# upserted in key order, so two batches cannot deadlock on each other's rows. `counted`
# holds a row per request: its parameters (`input`'s columns), `hits` and `retry_after`.
_HITS = """
input AS (
    SELECT * FROM unnest({arrays}) WITH ORDINALITY AS input({names}, ord)
), w AS (
    SELECT input.*,
           to_timestamp(floor(extract(epoch FROM now()) / window_seconds) * window_seconds)
           AS start
      FROM input
), keyed AS (
    SELECT client_ref, event, start, count(*)::int AS n FROM w GROUP BY client_ref, event, start
), hit AS (
    INSERT INTO rate_counters (client_ref, event, window_start, hits)
    SELECT client_ref, event, start, n FROM keyed ORDER BY client_ref, event, start
    ON CONFLICT (client_ref, event, window_start)
    DO UPDATE SET hits = rate_counters.hits + EXCLUDED.hits
    RETURNING client_ref, event, window_start, hits
), counted AS (
    SELECT w.*,
           hit.hits - keyed.n
               + row_number() OVER (PARTITION BY w.client_ref, w.event, w.start ORDER BY w.ord)
               AS hits,
           ceil(extract(epoch FROM w.start + make_interval(secs => w.window_seconds) - now()))
               ::int AS retry_after
      FROM w JOIN keyed USING (client_ref, event, start)
      JOIN hit ON hit.client_ref = w.client_ref AND hit.event = w.event
              AND hit.window_start = w.start
)"""
_COUNT_COLUMNS = (("client_ref", "bytea"), ("event", "text"), ("window_seconds", "int"))


def counted_batch(read_columns: Sequence[tuple[str, str]], select: str) -> str:
    """counted() for many requests at once: their parameters as arrays, the read's
    (`read_columns`) then hit()'s; `select` reads from `counted` (and `input`)."""
    columns = (*read_columns, *_COUNT_COLUMNS)
    arrays = ", ".join(f"${i}::{pgtype}[]" for i, (_, pgtype) in enumerate(columns, start=1))
    hits = _HITS.format(arrays=arrays, names=", ".join(name for name, _ in columns))
    return f"WITH {hits}\n{select}"


HITS = counted_batch((), "SELECT ord, hits, retry_after FROM counted ORDER BY ord")


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


async def hits(db: Db, counts: Sequence[tuple[bytes, str, int]]) -> list[Hit]:
    """hit() for each of `counts` (hit()'s arguments), in one round trip."""
    return [hit_of(row) for row in await db.fetch(HITS, *as_columns(counts))]
