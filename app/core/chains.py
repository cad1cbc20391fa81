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
whole (the guard, or the unique (part, seq)); the writer then reloads the head from the
database and tries again. A head is forgotten on any failure, so memory is never ahead
of the database.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from datetime import UTC, datetime

import asyncpg

from app.core.audit import PARTITIONS, Event, chained
from app.store import audit as store
from app.store.audit import Audited
from app.store.db import Db, StoreUnavailable

CHAINS_PER_PROCESS = 16  # more than the pool's connections, so writers rarely queue
ATTEMPTS = 4  # a head that moves under us four times running is contention, not chance


class Chains:
    """The chains this process writes in one statement, and their last known heads."""

    def __init__(self, parts: Sequence[int] | None = None) -> None:
        chosen = parts or random.sample(range(PARTITIONS), CHAINS_PER_PROCESS)
        self._locks = {part: asyncio.Lock() for part in chosen}
        self._heads: dict[int, tuple[int, bytes]] = {}

    async def write(
        self, db: Db, key: bytes, sql: str, args: Sequence[object], events: Sequence[Event]
    ) -> list[asyncpg.Record]:
        """Run an audited() statement (autocommit: `db` must not be in a transaction).
        Its rows come back; none means `work` did nothing and nothing was recorded."""
        for _ in range(ATTEMPTS):
            part = self._pick()
            async with self._locks[part]:
                head = self._heads.pop(part, None) or await store.read_head(db, part)
                at = datetime.now(UTC)
                rows = chained(key, part, head, at, events)
                try:
                    audit_args = store.audited_args(part, head[0], at, rows)
                    result = await db.fetch(sql, *args, *audit_args)
                except (asyncpg.SerializationError, asyncpg.UniqueViolationError) as exc:
                    if not _head_moved(exc):
                        raise
                    continue
                self._heads[part] = (rows[-1].seq, rows[-1].chain_hash) if result else head
                return result
        # The change was not made; like a busy database, worth a retry by the client.
        raise StoreUnavailable("audit chains kept moving under this process's writes")

    def bound(self, db: Db, key: bytes, events: Sequence[Event]) -> Audited:
        """write() with these events, for the store functions that take an Audited."""

        async def run(sql: str, args: Sequence[object]) -> list[asyncpg.Record]:
            return await self.write(db, key, sql, args, events)

        return run

    async def record(self, db: Db, key: bytes, events: Sequence[Event]) -> None:
        """Events with no change beside them, in one round trip."""
        await self.write(db, key, store.EVENTS_ONLY, (), events)

    def _pick(self) -> int:
        """A chain nobody in this process is writing, if there is one."""
        parts = list(self._locks)
        start = random.randrange(len(parts))  # noqa: S311  # spreading load, not secrecy
        for part in parts[start:] + parts[:start]:
            if not self._locks[part].locked():
                return part
        return parts[start]


def _head_moved(exc: asyncpg.PostgresError) -> bool:
    if isinstance(exc, asyncpg.UniqueViolationError):
        return exc.constraint_name == "uq_audit_events_part_seq"
    return True
