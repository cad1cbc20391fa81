"""What a request is counted as against the rate limits, and the counts of this process
made in batches."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from app.core.gather import Gather
from app.store import ratelimits
from app.store.db import Store
from app.store.ratelimits import Hit


@dataclass(frozen=True)
class Count:
    """What one request is counted as: its client, the event and the window length."""

    client_ref: bytes
    event: str
    window_seconds: int

    @property
    def args(self) -> tuple[bytes, str, int]:
        """The parameters of ratelimits.hit(), and of a counted() statement's last three."""
        return self.client_ref, self.event, self.window_seconds


class Counts:
    """This process's rate-limit counts, batched while earlier ones are in flight
    (app/core/gather.py): the counter upserts are one autocommitted statement per batch.
    Every request pays one, so no transaction around it."""

    def __init__(self, store: Store, *, in_flight: int = 2) -> None:
        self._store = store
        self._gather = Gather[Count, Hit]("rate_count", self._run, in_flight=in_flight)

    async def hit(self, count: Count) -> Hit:
        return await self._gather.submit(count)

    async def wait_idle(self, seconds: float) -> None:
        await self._gather.wait_idle(seconds)

    async def _run(self, batch: Sequence[Count]) -> Sequence[Hit | Exception]:
        async with self._store.connection() as db:
            if len(batch) > 1:
                try:
                    return await ratelimits.hits(db, [count.args for count in batch])
                except asyncpg.PostgresError:
                    pass  # not a busy database (that is StoreUnavailable): count each alone
            return [await ratelimits.hit(db, *count.args) for count in batch]
