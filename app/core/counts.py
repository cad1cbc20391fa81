"""What a request is counted as against the rate limits, and this process's counts, made
in batches: alone, or in front of a secret's first read."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from app.core.gather import Gather
from app.core.headroom import Headroom
from app.store import ratelimits, secrets
from app.store.db import Store, StoreUnavailable
from app.store.ratelimits import Hit
from app.store.secrets import LiveSecret

log = logging.getLogger(__name__)


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
        wait = store.acquire_timeout
        self._gather = Gather[Count, Hit](
            "rate_count", self._run, queue_wait=wait, in_flight=in_flight
        )
        self._peeks = Gather[_Peek, _Peeked](
            "peek_count", self._peek_all, queue_wait=wait, in_flight=in_flight
        )

    async def hit(self, count: Count) -> Hit:
        return await self._sent(count, early=False)

    def hit_early(self, count: Count, limit: int) -> bool:
        """True if the request may go on without waiting for its count (app/core/headroom.py
        says when), which is then made all the same, with the next batch."""
        if not self._headroom.allows_early(count, limit, asyncio.get_running_loop().time()):
            return False
        self._sent(count, early=True)
        return True

    def _sent(self, count: Count, *, early: bool) -> asyncio.Future[Hit]:
        """The count, queued now (the next request's verdict counts it in flight); what
        it comes to is told to the headroom, even if it fails."""
        self._headroom.sent(count, early=early)
        hit = self._gather.submit_soon(count)
        hit.add_done_callback(functools.partial(self._returned, count, early))
        return hit

    def _returned(self, count: Count, early: bool, hit: asyncio.Future[Hit]) -> None:
        exc = None if hit.cancelled() else hit.exception()  # retrieved, waited for or not
        if early and exc is not None and not isinstance(exc, StoreUnavailable):
            log.warning("a rate count not waited for failed: %s", type(exc).__name__)
        got = None if hit.cancelled() or exc is not None else hit.result()
        hits, ends_in = (None, 0) if got is None else (got.hits, got.retry_after)
        now = asyncio.get_running_loop().time()
        self._headroom.returned(count, early=early, hits=hits, ends_in=ends_in, now=now)

    async def peek(self, secret_id: bytes, count: Count) -> tuple[Hit, LiveSecret | None]:
        """secrets.peek_counted, in a batch."""
        return await self._peeks.submit((secret_id, count))

    async def wait_idle(self, seconds: float) -> None:
        """Let the counts in flight finish, those not waited for too (at shutdown)."""
        await asyncio.gather(self._gather.wait_idle(seconds), self._peeks.wait_idle(seconds))

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
