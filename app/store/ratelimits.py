"""Request counting per client and event in fixed windows, shared by every pod."""

from __future__ import annotations

from dataclasses import dataclass

from app.store.db import Db

# One upsert per request: no read-then-write, so concurrent requests never lose a hit.
# Windows are aligned on the epoch so every pod puts a request in the same window.
HIT = """
WITH w AS (
    SELECT to_timestamp(floor(extract(epoch FROM now()) / $3::int) * $3::int) AS start
)
INSERT INTO rate_counters (client_ref, event, window_start, hits)
SELECT $1, $2, w.start, 1 FROM w
ON CONFLICT (client_ref, event, window_start) DO UPDATE SET hits = rate_counters.hits + 1
RETURNING hits,
          ceil(extract(epoch FROM window_start + make_interval(secs => $3::int) - now()))::int
              AS retry_after
"""


@dataclass(frozen=True)
class Hit:
    hits: int
    retry_after: int  # seconds until this window ends


async def hit(db: Db, client_ref: bytes, event: str, window_seconds: int) -> Hit:
    row = await db.fetchrow(HIT, client_ref, event, window_seconds)
    assert row is not None  # noqa: S101  # INSERT ... RETURNING always yields the row
    return Hit(hits=row["hits"], retry_after=max(row["retry_after"], 1))
