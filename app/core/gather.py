"""Calls of one kind gathered into batches while earlier ones are in flight.

On this service's hardware the event loop's core is the limit, and every statement costs
it a round trip: a socket write, a wakeup, the driver's parsing (bench/FINDINGS.md). So
while `in_flight` batches of a kind run, the next calls wait in a queue, and the first
batch to finish takes the whole queue with it. A lone call goes at once: light load
waits for nothing, and the heavier the load, the larger the batches.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeAlias, TypeVar, Union

from app.metrics import BATCH_SIZE
from app.store.db import StoreUnavailable

Item = TypeVar("Item")
Result = TypeVar("Result")

MAX_BATCH = 64


@dataclass
class _Call(Generic[Item, Result]):
    item: Item
    done: asyncio.Future[Result]
    taken: bool = False  # in a batch: its outcome is on its way, however long it takes


# Runs a batch: per item, in the items' order, a result, an exception, or a future of
# its own that will settle it later (an item that has to wait, made apart from the
# batch so that the next batch does not wait with it).
Outcome: TypeAlias = Union[Result, Exception, "asyncio.Future[Result]"]
Runner: TypeAlias = Callable[[Sequence[Item]], Awaitable[Sequence[Outcome[Result]]]]


class Gather(Generic[Item, Result]):
    """One kind of call, batched."""

    def __init__(
        self, kind: str, run: Runner[Item, Result], *, queue_wait: float, in_flight: int = 2
    ) -> None:
        """`queue_wait`: how long a call may wait for a batch to take it (the pool's
        acquire bound: waiting for a batch stands in for waiting for a connection)."""
        self._size = BATCH_SIZE.labels(kind)
        self._run = run
        self._queue_wait = queue_wait
        self._in_flight = in_flight
        self._waiting: deque[_Call[Item, Result]] = deque()
        self._running = 0
        self._tasks: set[asyncio.Future[Any]] = set()

    async def submit(self, item: Item) -> Result:
        return await self.submit_soon(item)

    def submit_soon(self, item: Item) -> asyncio.Future[Result]:
        """The call, queued now; its outcome is the future's, for a caller that need not
        wait for it (cancelling the future withdraws a call no batch has taken yet)."""
        loop = asyncio.get_running_loop()
        call = _Call[Item, Result](item, loop.create_future())
        self._waiting.append(call)
        if self._running < self._in_flight:
            self._running += 1
            # A context of its own: the batch is no one request's (its request id).
            task = asyncio.create_task(self._drain(), context=contextvars.Context())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        timer = loop.call_later(self._queue_wait, _give_up, call)
        call.done.add_done_callback(lambda _: timer.cancel())
        return call.done

    async def wait_idle(self, seconds: float) -> None:
        """Let the batches in flight finish (at shutdown, before the pool closes)."""
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=seconds)

    async def _drain(self) -> None:
        try:
            while self._waiting:
                count = min(len(self._waiting), MAX_BATCH)
                taken = [self._waiting.popleft() for _ in range(count)]
                batch = [call for call in taken if not call.done.done()]  # caller gone
                for call in batch:
                    call.taken = True
                if batch:
                    await self._settle(batch)
        finally:
            self._running -= 1

    async def _settle(self, batch: list[_Call[Item, Result]]) -> None:
        self._size.observe(len(batch))
        try:
            outcomes = await self._run([call.item for call in batch])
        except asyncio.CancelledError:  # shutting down: nobody waits forever
            for call in batch:
                call.done.cancel()
            raise
        except StoreUnavailable as exc:  # the batch failed as a whole: so did each call
            outcomes = [_own_copy(exc) for _ in batch]
        except Exception as exc:  # a fault of ours: each call fails with it, none hangs
            outcomes = [exc] * len(batch)
        for call, outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, asyncio.Future):
                self._tasks.add(outcome)
                outcome.add_done_callback(self._tasks.discard)
                outcome.add_done_callback(functools.partial(_pass_on, call.done))
            elif call.done.done():
                continue
            elif isinstance(outcome, Exception):
                call.done.set_exception(outcome)
            else:
                call.done.set_result(outcome)


def _give_up(call: _Call[Item, Result]) -> None:
    """No batch took the call in time: like a connection not had in time. (Once taken,
    its outcome is on its way, bounded by the batch's own timeouts.)"""
    if not call.taken and not call.done.done():
        call.done.set_exception(StoreUnavailable("TimeoutError"))  # the batches skip it


def _own_copy(exc: StoreUnavailable) -> StoreUnavailable:
    """One exception per caller: raised in many tasks, one object would gather all their
    tracebacks."""
    copy = StoreUnavailable(*exc.args)
    copy.__cause__ = exc.__cause__
    return copy


def _pass_on(done: asyncio.Future[Result], finished: asyncio.Future[Result]) -> None:
    """Settle a call with what its own future came to."""
    if finished.cancelled():
        done.cancel()
        return
    exc = finished.exception()  # retrieved even if nobody waits any more
    if done.done():
        return
    if exc is not None:
        done.set_exception(exc)
    else:
        done.set_result(finished.result())
