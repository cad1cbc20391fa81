"""Audited writes in one round trip: the chain heads this process writes, kept in memory.

The transactional path (audit.record) costs four round trips beside the change: BEGIN,
lock the chain head, append, COMMIT. Here the change and its audit rows go in one
statement in its own implicit transaction (store.audit.audited), which needs the chain
hashes before the statement runs, so the head they chain from must be known without
asking: each process keeps the heads of a set of chains it writes, and holds a chain's
asyncio lock, not a row lock, while one statement of its own extends it.

Other writers can still extend these chains (another pod whose set overlaps, the
transactional path). Correctness does not rest on the memory being right: the statement
moves the head only from the seq its hashes were computed on, and otherwise aborts
whole (the guard); the writer then reloads the head from the
database and tries again; after two such misses it locks the head for its last tries. A
head is forgotten on any failure, so memory is never ahead of the database.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg

from app.core.audit import PARTITIONS, Event, chained, chained_alike, shared_fields
from app.metrics import AUDIT_HEAD_MOVED
from app.store import audit as store
from app.store.audit import Audited
from app.store.db import Db, StoreUnavailable

MIN_CHAINS = 16
# A head that moved under us twice running means another process writes this chain
# hard: the last tries lock the head first (two more round trips, but they cannot lose).
OPTIMISTIC_ATTEMPTS = 2
ATTEMPTS = 4
_Head = tuple[int, bytes]  # a chain's seq and hash


@dataclass(frozen=True)
class _Statement:
    sql: str
    args: Sequence[object]
    event: Event


class Chains:
    """The chains this process writes in one statement, and their last known heads."""

    def __init__(self, parts: Sequence[int] | None = None, *, writers: int = 10) -> None:
        """`writers`: how many statements can run at once (the pool's connections). Each
        holds its chain until its statement ends, slow or not, so there is a chain more
        than writers (up to all 64): a writer never waits for a chain, only for the pool."""
        count = min(PARTITIONS, max(MIN_CHAINS, writers + 1))
        chosen = parts or random.sample(range(PARTITIONS), count)
        self._locks = {part: asyncio.Lock() for part in chosen}
        self._heads: dict[int, tuple[int, bytes]] = {}

    async def write(
        self, db: Db, key: bytes, sql: str, args: Sequence[object], event: Event
    ) -> list[asyncpg.Record]:
        """Run an audited() statement. Its rows come back; none means `work` did nothing
        and nothing was recorded. Inside a caller's transaction each try is a savepoint,
        and the new head is not kept in memory: it is not the database's until commit."""
        statement = _Statement(sql, args, event)
        for attempt in range(ATTEMPTS):
            part = self._pick()
            async with self._locks[part]:
                locked = attempt >= OPTIMISTIC_ATTEMPTS
                try:
                    if locked or db.is_in_transaction():
                        # In a caller's transaction this is a savepoint: a failed try must
                        # not abort the caller's work, or there could be no next try.
                        async with db.transaction():
                            result, head = await self._run(db, key, part, statement, lock=locked)
                    else:
                        result, head = await self._run(db, key, part, statement)
                except (
                    asyncpg.SerializationError,
                    asyncpg.UniqueViolationError,
                    asyncpg.DeadlockDetectedError,
                ) as exc:
                    if not _head_moved(exc):
                        raise
                    next_locked = attempt + 1 >= OPTIMISTIC_ATTEMPTS
                    AUDIT_HEAD_MOVED.labels("locked" if next_locked else "optimistic").inc()
                    continue
                if not db.is_in_transaction():  # else it is not the database's until commit
                    self._heads[part] = head
                return result
        # The change was not made; like a busy database, worth a retry by the client.
        raise StoreUnavailable("audit chains kept moving under this process's writes")

    async def _run(
        self, db: Db, key: bytes, part: int, statement: _Statement, *, lock: bool = False
    ) -> tuple[list[asyncpg.Record], tuple[int, bytes]]:
        """One try, from the head in memory or else the database's (locked until commit
        when `lock`: then nobody can move it first). Returns the rows and the new head."""
        head = self._heads.pop(part, None)
        if head is None or lock:
            head = await store.read_head(db, part, lock=lock)
        [row] = chained(key, part, head, datetime.now(UTC), [statement.event])
        audit_args = store.audited_args(row, head[1])
        result = await db.fetch(statement.sql, *statement.args, *audit_args)
        return result, (row.seq, row.chain_hash) if result else head

    async def write_batch(
        self, db: Db, key: bytes, sql: str, columns: Sequence[object], events: Sequence[Event]
    ) -> list[asyncpg.Record]:
        """Run an audited_batch() statement (`columns`: its work's arrays), one try on
        one chain. It fails whole, whether a change could not be made or the head
        moved; either way the head is forgotten and the caller makes the changes alone."""

        def audit(part: int, head: _Head) -> tuple[list[object], _Head]:
            rows = chained(key, part, head, datetime.now(UTC), events)
            return store.batch_args(head, rows), (rows[-1].seq, rows[-1].chain_hash)

        return await self._one_try(db, sql, columns, audit)

    async def write_alike(
        self,
        db: Db,
        key: bytes,
        sql: str,
        columns: Sequence[object],
        like: Event,
        receipt_refs: Sequence[str],
    ) -> list[asyncpg.Record]:
        """write_batch() for an audited_batch(alike=True) statement: an event per element
        of `receipt_refs` (in hex), each `like` but for its receipt; `columns` packed, the
        same receipts among them (the statement's rows read them there)."""

        def audit(part: int, head: _Head) -> tuple[list[object], _Head]:
            at = datetime.now(UTC)
            hashes = chained_alike(key, part, head, at, like, receipt_refs)
            args = store.alike_args(part, head, at, shared_fields(like), hashes)
            return args, (head[0] + len(hashes), hashes[-1])

        return await self._one_try(db, sql, columns, audit)

    async def _one_try(
        self,
        db: Db,
        sql: str,
        columns: Sequence[object],
        audit: Callable[[int, _Head], tuple[list[object], _Head]],
    ) -> list[asyncpg.Record]:
        """A batch statement on one chain, from the head in memory or else the database's:
        `audit` gives its audit parameters and the head they move to, kept only if the
        statement succeeds."""
        part = self._pick()
        async with self._locks[part]:
            head = self._heads.pop(part, None)
            if head is None:
                head = await store.read_head(db, part)
            args, moved_to = audit(part, head)
            result = await db.fetch(sql, *columns, *args)
            self._heads[part] = moved_to
            return result

    def bound(self, db: Db, key: bytes, event: Event) -> Audited:
        """write() with this event, for the store functions that take an Audited."""

        async def run(sql: str, args: Sequence[object]) -> list[asyncpg.Record]:
            return await self.write(db, key, sql, args, event)

        return run

    async def record(self, db: Db, key: bytes, event: Event) -> None:
        """An event with no change beside it, in one round trip."""
        await self.write(db, key, store.EVENT_ONLY, (), event)

    @asynccontextmanager
    async def reserved(self) -> AsyncIterator[int]:
        """A chain of this process for a transaction of the caller's (audit.record with
        `part`): no writer here waits on its head meanwhile, since they pick other chains.
        Its head in memory is forgotten, as that transaction moves it."""
        part = self._pick()
        async with self._locks[part]:
            try:
                yield part
            finally:
                self._heads.pop(part, None)

    def _pick(self) -> int:
        """A chain nobody in this process is writing, if there is one."""
        parts = list(self._locks)
        start = random.randrange(len(parts))  # noqa: S311  # spreading load, not secrecy
        for part in parts[start:] + parts[:start]:
            if not self._locks[part].locked():
                return part
        return parts[start]


def _head_moved(exc: asyncpg.PostgresError) -> bool:
    # The unique (part, seq) is gone since migration 0012; a schema before it may still
    # report a moved head so.
    if isinstance(exc, asyncpg.UniqueViolationError):
        return exc.constraint_name == "uq_audit_events_part_seq"
    return True
