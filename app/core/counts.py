"""What a request is counted as against the rate limits, and this process's counts, made
in batches: alone, or in front of a secret's first read."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass

from app.core.gather import Gather
from app.core.headroom import Headroom
from app.store import ratelimits, secrets
from app.store.db import Store, StoreUnavailable
from app.store.ratelimits import Hit
from app.store.secrets import LiveSecret


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


_Peek = tuple[bytes, Count]  # a secret's id, and how its reader is counted
_Peeked = tuple[Hit, LiveSecret | None]


class Counts:
    """This process's rate-limit counts, batched while earlier ones are in flight
    (app/core/gather.py): the counter upserts are one autocommitted statement per batch.
    Every request pays one, so no transaction around it."""

    def __init__(self, store: Store, *, in_flight: int = 2) -> None:
        self._store = store
        self._headroom = Headroom()
        self._background: set[asyncio.Task[None]] = set()
        wait = store.acquire_timeout
        self._gather = Gather[Count, Hit](
            "rate_count", self._run, queue_wait=wait, in_flight=in_flight
        )
        self._peeks = Gather[_Peek, _Peeked](
            "peek_count", self._peek_all, queue_wait=wait, in_flight=in_flight
        )

    async def hit(self, count: Count) -> Hit:
        self._headroom.sent(count, early=False)
        return await self._settled(count, early=False)

    def hit_early(self, count: Count, limit: int) -> bool:
        """True if the request may go on without waiting for its count (app/core/headroom.py
        says when), which is then made in the background."""
        if not self._headroom.allows_early(count, limit, asyncio.get_running_loop().time()):
            return False
        self._headroom.sent(count, early=True)  # now: the next request's verdict counts it
        task = asyncio.create_task(self._count_later(count))
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return True

    async def _count_later(self, count: Count) -> None:
        with contextlib.suppress(StoreUnavailable):  # the request's own write meets it too
            await self._settled(count, early=True)

    async def _settled(self, count: Count, *, early: bool) -> Hit:
        """The count, made; what it came to is told to the headroom, even if it failed."""
        hit: Hit | None = None
        try:
            hit = await self._gather.submit(count)
            return hit
        finally:
            self._headroom.returned(
                count,
                early=early,
                hits=None if hit is None else hit.hits,
                ends_in=0 if hit is None else hit.retry_after,
                now=asyncio.get_running_loop().time(),
            )

    async def peek(self, secret_id: bytes, count: Count) -> tuple[Hit, LiveSecret | None]:
        """secrets.peek_counted, in a batch."""
        return await self._peeks.submit((secret_id, count))

    async def wait_idle(self, seconds: float) -> None:
        """Let the counts in flight finish, the background ones too (at shutdown)."""
        waits: list[Awaitable[object]] = [
            self._gather.wait_idle(seconds),
            self._peeks.wait_idle(seconds),
        ]
        if self._background:
            waits.append(asyncio.wait(self._background, timeout=seconds))
        await asyncio.gather(*waits)

    async def _peek_all(self, batch: Sequence[_Peek]) -> Sequence[_Peeked]:
        asked = [(secret_id, count.args) for secret_id, count in batch]
        async with self._store.connection() as db:
            if len(batch) == 1:
                return [await secrets.peek_counted(db, *asked[0])]
            return await secrets.peeks_counted(db, asked)

    async def _run(self, batch: Sequence[Count]) -> Sequence[Hit]:
        async with self._store.connection() as db:
            if len(batch) == 1:
                return [await ratelimits.hit(db, *batch[0].args)]
            return await ratelimits.hits(db, [count.args for count in batch])
