"""Group commit: concurrent audited writes of one kind gathered into one statement.

A batch (app/store/batched.py) costs one round trip, one commit with its WAL flush and
one chain head move for all its changes (app/core/gather.py says when batches form).

A batch is all or nothing. If any change in it cannot be made (a secret consumed
meanwhile, a secret twice in the batch, bad data) or the chain head moved under it, the
statement aborts whole, and each change is then made alone through Chains.write, which
decides each the way it always has: batching changes how many changes go in a statement,
never which are made.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from app.core.audit import Event
from app.core.chains import Chains
from app.core.gather import Gather, Outcome, Runner
from app.metrics import GROUP_COMMIT_ALONE
from app.store.audit import EVENT_ONLY, Audited
from app.store.batched import BATCHED, Batched
from app.store.db import ROLLED_BACK, Store, StoreUnavailable, as_columns

Rows = list[asyncpg.Record]


@dataclass(frozen=True)
class _Write:
    args: Sequence[object]
    event: Event


class GroupCommit:
    """Audited writes of this process, batched per kind while earlier ones are in flight."""

    def __init__(self, store: Store, chains: Chains, key: bytes, *, in_flight: int = 2) -> None:
        self._store = store
        self._chains = chains
        self._key = key
        self._kinds = {
            sql: Gather(
                batched.name,
                self._runner(sql, batched),
                queue_wait=store.acquire_timeout,
                in_flight=in_flight,
            )
            for sql, batched in BATCHED.items()
        }

    def bound(self, event: Event) -> Audited:
        """write() with this event, for the store functions that take an Audited."""

        async def run(sql: str, args: Sequence[object]) -> Rows:
            return await self.write(sql, args, event)

        return run

    async def write(self, sql: str, args: Sequence[object], event: Event) -> Rows:
        """Run an audited() statement, alone or in a batch of its kind; its rows come back
        as they would alone (in a batch with an `ord` column more)."""
        kind = self._kinds.get(sql)
        if kind is None:
            return await self._alone(sql, _Write(args, event))
        rows: Rows = await kind.submit(_Write(args, event))
        return rows

    async def record(self, event: Event) -> None:
        """An event with no change beside it (a read worth recording)."""
        await self.write(EVENT_ONLY, (), event)

    async def wait_idle(self, seconds: float) -> None:
        """Let the batches in flight finish (at shutdown, before the pool closes)."""
        await asyncio.gather(*(kind.wait_idle(seconds) for kind in self._kinds.values()))

    def _runner(self, sql: str, batched: Batched) -> Runner[_Write, Rows]:
        async def run(batch: Sequence[_Write]) -> Sequence[Outcome[Rows]]:
            # The batch's statement even for one: it never waits for a row another
            # transaction holds (batched.CONSUME_MANY), where the single one would.
            try:
                rows = await self._together(batched, batch)
            except (asyncpg.PostgresError, StoreUnavailable) as exc:
                if isinstance(exc, StoreUnavailable) and not _rolled_back(exc):
                    # No connection in time, or a lost one (the batch may have
                    # committed): every caller gets the 503 a single write would have got.
                    raise
                # The batch could not be made whole, or waited too long on a lock or the
                # statement timeout: it rolled back, so each member goes alone, apart, and
                # may wait in its turn; the next batch does not wait for it.
                GROUP_COMMIT_ALONE.labels(batched.name).inc()
                return [asyncio.ensure_future(self._alone(sql, write)) for write in batch]
            by_member: defaultdict[int, Rows] = defaultdict(list)
            for row in rows:
                by_member[row["ord"]].append(row)
            return [by_member[ord_] for ord_ in range(1, len(batch) + 1)]

        return run

    async def _together(self, batched: Batched, batch: Sequence[_Write]) -> Rows:
        columns = as_columns(write.args for write in batch)
        events = [write.event for write in batch]
        async with self._store.connection() as db:
            return await self._chains.write_batch(db, self._key, batched.sql, columns, events)

    async def _alone(self, sql: str, write: _Write) -> Rows:
        async with self._store.connection() as db:
            return await self._chains.write(db, self._key, sql, write.args, write.event)


def _rolled_back(exc: StoreUnavailable) -> bool:
    """A timeout inside the statement (a lock, statement_timeout) or a deadlock:
    PostgreSQL rolled it back, so nothing of the batch was made."""
    return isinstance(exc.__cause__, ROLLED_BACK)
