"""Reading the audit trail back: verify its chains, export it, prune it (and say so in it)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

from app.core import audit
from app.core.audit import caused_by
from app.core.context import Caller, Services
from app.core.errors import Forbidden, InvalidRequest, NotAuthorized
from app.store import audit as store
from app.store.db import Db

PAGE_LIMIT = 1000


def moment(text: str, field: str) -> datetime:
    """An ISO 8601 date or time (UTC unless it says otherwise), or epoch seconds."""
    try:
        if text.strip().lstrip("-").isdigit():
            return datetime.fromtimestamp(int(text), UTC)
        parsed = datetime.fromisoformat(text.strip())
    except (ValueError, OverflowError, OSError):
        raise InvalidRequest(
            f"{field} must be an ISO 8601 date or time, or epoch seconds"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Break:
    """The first place a chain does not hold."""

    part: int
    seq: int
    row_id: int | None
    reason: str

    def __str__(self) -> str:
        where = f"row id {self.row_id}" if self.row_id is not None else "after the last row"
        return f"partition {self.part}, seq {self.seq} ({where}): {self.reason}"


async def verify(svc: Services) -> tuple[int, Break | None]:
    """Walk every chain; returns the rows checked and the first break, if any. The heads
    and the rows are read in one snapshot: read apart, a row committed between the two
    reads looked like a chain longer than its head, a break that was not there."""
    async with svc.store.snapshot() as tx:
        return await verify_chains(tx, svc.audit_key)


async def verify_chains(tx: Db, key: bytes) -> tuple[int, Break | None]:
    """verify() on a transaction of the caller's: one pass over the trail sorted by chain
    and seq, the chains in order."""
    checked = 0
    trail = _Trail(store.chains(tx))
    for head in await store.heads(tx):
        if broken := await trail.stray_before(head.part):
            return checked, broken
        count, broken = await _verify_chain(key, head, trail.chain(head.part))
        checked += count
        if broken:
            return checked, broken
    return checked, await trail.stray_before(None)


class _Trail:
    """The trail's rows in (part, seq) order, handed out a chain at a time."""

    def __init__(self, rows: AsyncIterator[store.Row]) -> None:
        self._rows = rows
        self._next: store.Row | None = None
        self._ended = False

    async def _peek(self) -> store.Row | None:
        if self._next is None and not self._ended:
            self._next = await anext(self._rows, None)
            self._ended = self._next is None
        return self._next

    async def chain(self, part: int) -> AsyncIterator[store.Row]:
        while (row := await self._peek()) is not None and row.part == part:
            self._next = None
            yield row

    async def stray_before(self, part: int | None) -> Break | None:
        """A row of a chain with no head, met before chain `part` (None: at the end)."""
        row = await self._peek()
        if row is None or (part is not None and row.part >= part):
            return None
        return Break(row.part, row.seq, row.id, "row of no chain")


async def _verify_chain(
    key: bytes, head: store.ChainHead, rows: AsyncIterator[store.Row]
) -> tuple[int, Break | None]:
    seq, previous = head.pruned_seq, head.pruned_hash or audit.genesis(head.part)
    async for row in rows:
        seq += 1
        if row.seq < seq:  # no index forbids it (migration 0012); no writer makes it
            return seq - 1 - head.pruned_seq, Break(head.part, row.seq, row.id, "seq repeated")
        if row.seq != seq:
            return row.seq - head.pruned_seq, Break(head.part, seq, row.id, "row missing (deleted)")
        if audit.chain_hash(key, previous, row) != row.chain_hash:
            return seq - head.pruned_seq, Break(head.part, seq, row.id, "row altered")
        previous = row.chain_hash
    if seq != head.seq or previous != head.chain_hash:
        return seq - head.pruned_seq, Break(head.part, seq + 1, None, "rows missing at the end")
    return seq - head.pruned_seq, None


async def export(svc: Services, since: datetime, until: datetime) -> AsyncIterator[store.Row]:
    """Every event in [since, until), in id order, a page at a time (bounded memory)."""
    after = 0
    while True:
        async with svc.store.connection() as db:
            page = await store.events_between(db, since, until, after, PAGE_LIMIT)
        for row in page:
            yield row
        if len(page) < PAGE_LIMIT:
            return
        after = page[-1].id


def require_reader(caller: Caller) -> None:
    """Only admins read the trail: NotAuthorized for nobody, Forbidden for a plain account."""
    if caller.anonymous:
        raise NotAuthorized
    if not caller.admin:
        raise Forbidden


async def page(
    svc: Services, caller: Caller, since: datetime, until: datetime, after: int, limit: int
) -> list[store.Row]:
    """One page of events for the admin API."""
    require_reader(caller)
    async with svc.store.transaction() as tx:
        rows = await store.events_between(tx, since, until, after, min(limit, PAGE_LIMIT))
        await audit.record(
            tx, svc.audit_key, [caused_by(caller, "audit.read", detail=str(len(rows)))]
        )
    return rows


async def prune(svc: Services, before: datetime, by: Caller) -> int:
    """Delete events older than `before`, chain by chain, keeping each chain verifiable:
    the hash of the last removed row becomes the chain's new starting point. The prune
    itself is recorded in the trail."""
    async with svc.store.transaction() as tx:
        removed = await store.prune(tx, before)
        event = caused_by(by, "audit.pruned", detail=f"before={before.isoformat()} rows={removed}")
        await audit.record(tx, svc.audit_key, [event])
    return removed
