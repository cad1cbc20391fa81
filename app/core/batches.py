"""Group commit: concurrent audited writes of one kind gathered into one statement.

On this service's hardware the event loop's core is the limit, and every statement costs
it a round trip (a socket write, a wakeup, the driver's parsing) and PostgreSQL a commit
with its WAL flush. So while a kind's writes are in flight (at most `in_flight` of them)
the next ones wait in a queue, and the first to be free takes the whole queue as one
statement (app/store/batched.py): one round trip, one commit and one chain head move for
the lot. A lone write goes at once, as it would without batching, so light load waits for
nothing.

A batch is all or nothing. If any change in it cannot be made (a secret consumed
meanwhile, a secret twice in the batch, bad data) or the chain head moved under it, the
statement aborts whole and each change is then made alone through Chains.write, which
decides each the way it always has; so batching changes what gets done in one statement,
never what gets done.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict, deque
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field

import asyncpg

from app.core.audit import Event
from app.core.chains import Chains
from app.metrics import GROUP_COMMIT_ALONE, GROUP_COMMIT_BATCH
from app.store.audit import Audited
from app.store.batched import BATCHED, Batched
from app.store.db import Store

MAX_BATCH = 64


@dataclass
class _Write:
    args: Sequence[object]
    event: Event
    done: asyncio.Future[list[asyncpg.Record]]


@dataclass
class _Queue:
    batched: Batched
    waiting: deque[_Write] = field(default_factory=deque)
    running: int = 0


class GroupCommit:
    """Audited writes of this process, batched per kind while earlier ones are in flight."""

    def __init__(self, store: Store, chains: Chains, key: bytes, *, in_flight: int = 2) -> None:
        self._store = store
        self._chains = chains
        self._key = key
        self._in_flight = in_flight
        self._queues: dict[str, _Queue] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def bound(self, event: Event) -> Audited:
        """write() with this event, for the store functions that take an Audited."""

        async def run(sql: str, args: Sequence[object]) -> list[asyncpg.Record]:
            return await self.write(sql, args, event)

        return run

    async def write(self, sql: str, args: Sequence[object], event: Event) -> list[asyncpg.Record]:
        """Run an audited() statement, alone or in a batch of its kind; its rows come back
        as they would alone (in a batch with an `ord` column more)."""
        batched = BATCHED.get(sql)
        if batched is None:
            return await self._alone(sql, args, event)
        queue = self._queues.get(sql)
        if queue is None:
            queue = self._queues[sql] = _Queue(batched)
        write = _Write(args, event, asyncio.get_running_loop().create_future())
        queue.waiting.append(write)
        if queue.running < self._in_flight:
            queue.running += 1
            task = asyncio.create_task(self._drain(sql, queue))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await write.done

    async def wait_idle(self, seconds: float) -> None:
        """Let the batches in flight finish (at shutdown, before the pool closes)."""
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=seconds)

    async def _drain(self, sql: str, queue: _Queue) -> None:
        try:
            while queue.waiting:
                count = min(len(queue.waiting), MAX_BATCH)
                batch = [queue.waiting.popleft() for _ in range(count)]
                batch = [write for write in batch if not write.done.done()]  # caller gone
                if not batch:
                    continue
                try:
                    await self._commit(sql, queue.batched, batch)
                except asyncio.CancelledError:  # shutting down: nobody waits forever
                    for write in batch:
                        write.done.cancel()
                    raise
        finally:
            queue.running -= 1

    async def _commit(self, sql: str, batched: Batched, batch: list[_Write]) -> None:
        GROUP_COMMIT_BATCH.labels(batched.name).observe(len(batch))
        if len(batch) == 1:
            await _settle(batch[0], self._alone(sql, batch[0].args, batch[0].event))
            return
        try:
            rows = await self._together(batched, batch)
        except asyncpg.PostgresError:
            # The batch could not be made whole (the store's "unavailable" errors are not
            # these: they end up as StoreUnavailable, for every member alike, below).
            GROUP_COMMIT_ALONE.labels(batched.name).inc()
            await asyncio.gather(
                *(_settle(write, self._alone(sql, write.args, write.event)) for write in batch)
            )
            return
        except Exception as exc:  # handed to every member's caller
            for write in batch:
                _fail(write, exc)
            return
        by_member: defaultdict[int, list[asyncpg.Record]] = defaultdict(list)
        for row in rows:
            by_member[row["ord"]].append(row)
        for ord_, write in enumerate(batch, start=1):
            if not write.done.done():
                write.done.set_result(by_member[ord_])

    async def _together(self, batched: Batched, batch: list[_Write]) -> list[asyncpg.Record]:
        columns = [list(column) for column in zip(*(write.args for write in batch), strict=True)]
        events = [write.event for write in batch]
        async with self._store.connection() as db:
            return await self._chains.write_batch(db, self._key, batched.sql, columns, events)

    async def _alone(self, sql: str, args: Sequence[object], event: Event) -> list[asyncpg.Record]:
        async with self._store.connection() as db:
            return await self._chains.write(db, self._key, sql, args, event)


async def _settle(write: _Write, outcome: Awaitable[list[asyncpg.Record]]) -> None:
    try:
        rows = await outcome
    except Exception as exc:  # handed to the caller
        _fail(write, exc)
    else:
        if not write.done.done():
            write.done.set_result(rows)


def _fail(write: _Write, exc: Exception) -> None:
    if not write.done.done():
        write.done.set_exception(exc)
