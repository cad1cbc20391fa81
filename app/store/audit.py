"""The audit trail's SQL: lock a chain head, append rows, read them back in order."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

import asyncpg

from app.store.db import Db

# Runs an audited() statement with the work's parameters and returns its rows; the
# caller has bound the audit events to it (app/core/chains.py).
Audited = Callable[[str, Sequence[object]], Awaitable[list[asyncpg.Record]]]


@dataclass(frozen=True)
class Head:
    seq: int
    chain_hash: bytes
    at: datetime  # the transaction's time (database clock), stamped on its events


class Row(NamedTuple):
    """An audit row as stored; `chain_hash` covers every other field but `id`. A tuple,
    not a frozen dataclass: the sweeper makes one per expired secret, at a third of
    the cost (0.3-0.6 against 1.4-1.7 µs)."""

    id: int
    part: int
    seq: int
    at: datetime
    event: str
    outcome: str
    actor: str
    client_ip: str | None
    user_agent: str | None
    request_id: str | None
    receipt_ref: bytes | None
    detail: str | None
    chain_hash: bytes


LOCK_HEAD = "SELECT seq, chain_hash, now() AS at FROM audit_heads WHERE part = $1 FOR UPDATE"

APPEND = """
WITH appended AS (
    INSERT INTO audit_events (part, seq, at, event, outcome, actor, client_ip, user_agent,
                              request_id, receipt_ref, detail, chain_hash)
    SELECT $1, seq, $2, event, outcome, actor, client_ip, user_agent, request_id,
           receipt_ref, detail, chain_hash
      FROM unnest($3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
                  $9::text[], $10::bytea[], $11::text[], $12::bytea[])
           AS e(seq, event, outcome, actor, client_ip, user_agent, request_id, receipt_ref,
                detail, chain_hash)
)
UPDATE audit_heads SET seq = $13, chain_hash = $14 WHERE part = $1
"""

# A change and its audit row in one statement (its own implicit transaction), the row
# chained beforehand from a head this process holds in memory (app/core/chains.py).
# `work` runs first and decides: no row back, nothing is recorded. Then the head moves,
# but only from the seq the hash was computed on: if another writer moved it, the
# guard aborts the whole statement, change included, and the writer retries. A second
# writer of the same seq waits on the head's row lock, then re-reads the head the first
# one moved (READ COMMITTED) and is aborted the same way: a seq is written once, with no
# unique index to say so (migration 0012).
# Locks are taken in the order of the transactional path (the change's rows, then the
# head), so the two kinds of writer cannot deadlock each other. Scalars, not arrays: one
# event per change, and encoding ten one-element arrays cost the driver more than the rest.
_AUDITED = """
WITH {work},
head AS (
    UPDATE audit_heads SET seq = ${seq}::bigint, chain_hash = ${chain_hash}::bytea
     WHERE part = ${part}::smallint AND seq = ${seq}::bigint - 1
       AND chain_hash = ${previous}::bytea AND EXISTS (SELECT 1 FROM work)
    RETURNING part, seq
),
appended AS (
    INSERT INTO audit_events (part, seq, at, event, outcome, actor, client_ip, user_agent,
                              request_id, receipt_ref, detail, chain_hash)
    SELECT head.part, head.seq, ${at}::timestamptz, ${event}::text, ${outcome}::text,
           ${actor}::text, ${client_ip}::text, ${user_agent}::text, ${request_id}::text,
           ${receipt_ref}::bytea, ${detail}::text, ${chain_hash}::bytea
      FROM head
)
SELECT work.*, ots_audit_guard((SELECT count(*) FROM head) = 1) AS audited FROM work
"""
# The audit parameters, in order, after the work's own.
AUDITED_FIELDS = (
    "part",
    "seq",
    "at",
    "event",
    "outcome",
    "actor",
    "client_ip",
    "user_agent",
    "request_id",
    "receipt_ref",
    "detail",
    "chain_hash",
)
# The statement's audit parameters: the row's fields, then the hash it was chained on. The
# head must still hold that hash, not only that seq: a process whose memory were ahead of
# the database (its transaction rolled back) could otherwise meet the same seq written by
# another process and chain on from a hash the database never had.
AUDITED_PARAMS = (*AUDITED_FIELDS, "previous")
# APPEND takes these once for the whole batch, and every other field as a column.
_SHARED_BY_THE_BATCH = ("part", "at")
READ_HEAD = "SELECT seq, chain_hash FROM audit_heads WHERE part = $1"


def audited(work: str, work_params: int) -> str:
    """One statement: `work` (CTE definitions, the last named `work`, using $1 to
    $work_params) and the audit row of its outcome; audited_args() gives the rest."""
    numbers = {name: work_params + 1 + i for i, name in enumerate(AUDITED_PARAMS)}
    return _AUDITED.format(work=work.strip(), **numbers)


# Many changes of one kind and their audit rows in one statement (group commit,
# app/core/batches.py). The work's parameters arrive as arrays, an element per change,
# and are read through `input`, whose `ord` is the change's place in the batch; `work`
# yields a row per change made, with its `ord`. The rows were chained beforehand, each
# on the one before, so the head moves over the whole batch only if every change was
# made; otherwise the guard aborts the statement and the writer makes each change alone.
# Even when no change at all was made: alone, "nothing to do" and "a row another
# transaction holds" (which a batch skips) have different answers. So the guard is
# evaluated whether or not `work` has rows, unlike audited()'s.
_AUDITED_BATCH = """
WITH input AS (SELECT * FROM {source}),
{work},
head AS (
    UPDATE audit_heads SET seq = ${to_seq}::bigint, chain_hash = ${to_hash}::bytea
     WHERE part = ${part}::smallint AND seq = ${from_seq}::bigint
       AND chain_hash = ${previous}::bytea
       AND (SELECT count(DISTINCT ord) FROM work) = ${to_seq}::bigint - ${from_seq}::bigint
    RETURNING part
),
appended AS (
    INSERT INTO audit_events (part, seq, at, event, outcome, actor, client_ip, user_agent,
                              request_id, receipt_ref, detail, chain_hash)
    SELECT head.part, {fields}
      FROM head, {rows}
),
guard AS (SELECT ots_audit_guard((SELECT count(*) FROM head) = 1) AS audited)
{answer}
"""
# What a batch statement answers: a row per change made (with the guard's column), or,
# for a caller that only needs to know all were made, the guard's row alone; then
# PostgreSQL sends one row, not one per change (4 % of its time in a sweep's statement).
_PER_CHANGE = "SELECT work.*, guard.audited FROM guard LEFT JOIN work ON true"
_GUARD_ONLY = "SELECT guard.audited FROM guard"
_BATCH_SCALARS = ("part", "from_seq", "previous", "to_seq", "to_hash", "at")
# The audit rows' own fields, an array each, in APPEND's order.
_ROW_COLUMNS = (
    ("seq", "bigint"),
    ("event", "text"),
    ("outcome", "text"),
    ("actor", "text"),
    ("client_ip", "text"),
    ("user_agent", "text"),
    ("request_id", "text"),
    ("receipt_ref", "bytea"),
    ("detail", "text"),
    ("chain_hash", "bytea"),
)


_ROW_FIELDS = """e.seq, ${at}::timestamptz, e.event, e.outcome, e.actor, e.client_ip,
           e.user_agent, e.request_id, e.receipt_ref, e.detail, e.chain_hash"""

# A batch of events alike but for their receipt (the sweeper's: each secret.expired, by
# the system): the fields they share go once, as scalars, and each row's seq is its place
# after the head. With chained_alike, chaining and laying out a batch's rows went from 5.2
# to 1.6 µs a row (bench/FINDINGS.md, sixth round).
#
# Its arrays go packed, one parameter each: the work's columns as text words joined by
# spaces (which the work casts), the chain hashes end to end (HASH_BYTES each). The
# driver checks every element of an array on its own (collections.abc isinstance tests)
# and encodes and decodes it apart: 40 % of the sweep's Python a row, against one string
# or bytea a statement (twelfth round). The receipts are one of the work's columns, in
# hex, and the audit rows read them from `input` too: sent and parsed once.
ALIKE_SHARED = ("event", "outcome", "actor", "client_ip", "user_agent", "request_id", "detail")
HASH_BYTES = 32  # HMAC-SHA256
_ALIKE_FIELDS = """${from_seq}::bigint + e.ord, ${at}::timestamptz, ${event}::text,
           ${outcome}::text, ${actor}::text, ${client_ip}::text, ${user_agent}::text,
           ${request_id}::text, decode(e.receipt_ref, 'hex'), ${detail}::text,
           substring(${chain_hashes}::bytea FROM (e.ord * {hash_bytes} - {last})::int
                     FOR {hash_bytes})"""

# audited_batch()'s parameters after the work's, in order (batch_args gives them).
BATCH_PARAMS = (*_BATCH_SCALARS, *(name for name, _ in _ROW_COLUMNS))


def audited_batch(
    work: str, columns: Sequence[tuple[str, str]], *, alike: bool = False, per_change: bool = True
) -> str:
    """audited() for many changes at once: `columns` names and types the work's
    parameters ($1 to $len(columns), an array each, read as the columns of `input`);
    batch_args() gives the rest. With `alike` (events the same but for their receipt),
    alike_args() does, and every array goes packed: each of the work's columns as one text
    of words joined by spaces, which `input` holds as text for the work to cast; one of
    them is `receipt_ref`, each event's receipt in hex. Without `per_change`, it answers
    one row, not one per change made."""

    def arrays(first: int, cols: Sequence[tuple[str, str]]) -> str:
        if alike:
            return ", ".join(f"string_to_array(${first + i}::text, ' ')" for i in range(len(cols)))
        return ", ".join(f"${first + i}::{pgtype}[]" for i, (_, pgtype) in enumerate(cols))

    scalars = {name: len(columns) + 1 + i for i, name in enumerate(_BATCH_SCALARS)}
    if columns:
        source = f"unnest({arrays(1, columns)}) WITH ORDINALITY AS input({_names(columns)}, ord)"
    else:  # events alone: as many as the batch moves the head by
        source = "generate_series(1, ${to_seq}::bigint - ${from_seq}::bigint) AS ord".format(
            **scalars
        )
    first = len(columns) + len(_BATCH_SCALARS) + 1  # the rows' own parameters
    if alike:
        if "receipt_ref" not in dict(columns):
            raise ValueError("an alike batch reads its events' receipts from `receipt_ref`")
        shared = {name: first + i for i, name in enumerate(ALIKE_SHARED)}
        hashes = first + len(ALIKE_SHARED)
        fields = _ALIKE_FIELDS.format(
            **scalars, **shared, chain_hashes=hashes, hash_bytes=HASH_BYTES, last=HASH_BYTES - 1
        )
        rows = "input AS e"
    else:
        fields = _ROW_FIELDS.format(**scalars)
        rows = f"unnest({arrays(first, _ROW_COLUMNS)}) AS e({_names(_ROW_COLUMNS)})"
    answer = _PER_CHANGE if per_change else _GUARD_ONLY
    return _AUDITED_BATCH.format(
        source=source, work=work.strip(), fields=fields, rows=rows, answer=answer, **scalars
    )


def _names(columns: Sequence[tuple[str, str]]) -> str:
    return ", ".join(name for name, _ in columns)


def batch_args(head: tuple[int, bytes], rows: Sequence[Row]) -> list[object]:
    """An audited_batch() statement's parameters after the work's: the rows, chained on
    `head` (its seq and hash), which they move to the last of them."""
    last = rows[-1]
    scalars = [last.part, head[0], head[1], last.seq, last.chain_hash, last.at]
    return [*scalars, *([getattr(row, name) for row in rows] for name, _ in _ROW_COLUMNS)]


def alike_args(
    part: int,
    head: tuple[int, bytes],
    at: datetime,
    shared: Sequence[str | None],
    hashes: Sequence[bytes],
) -> list[object]:
    """An audited_batch(alike=True) statement's parameters after the work's: the events'
    shared fields (in ALIKE_SHARED's order), then their hashes end to end, chained on
    `head` (its seq and hash) of chain `part`, which they move to the last."""
    scalars = [part, head[0], head[1], head[0] + len(hashes), hashes[-1], at]
    return [*scalars, *shared, b"".join(hashes)]


# The columns an audited statement adds to its work's (the batch's `ord`, the guard's).
AUDIT_COLUMNS = frozenset({"ord", "audited"})


def work_of(row: asyncpg.Record) -> dict[str, Any]:
    """An audited statement's row without the columns the audit added."""
    return {k: v for k, v in row.items() if k not in AUDIT_COLUMNS}


# An event alone, with no change beside it (reads worth recording).
EVENT_ONLY = audited("work AS (SELECT true AS recorded)", 0)


def audited_args(row: Row, previous: bytes) -> list[object]:
    """The audit parameters of an audited() statement, after the work's own: the row,
    then the chain hash it was chained on."""
    return [*(getattr(row, name) for name in AUDITED_FIELDS), previous]


async def read_head(db: Db, part: int, *, lock: bool = False) -> tuple[int, bytes]:
    """A chain's seq and hash; `lock` holds it (FOR UPDATE) until the transaction ends."""
    row = await db.fetchrow(READ_HEAD + (" FOR UPDATE" if lock else ""), part)
    assert row is not None  # noqa: S101  # the migrations create every chain's head
    return row["seq"], row["chain_hash"]


_COLUMNS = """id, part, seq, at, event, outcome, actor, client_ip, user_agent, request_id,
              receipt_ref, detail, chain_hash"""
HEADS = "SELECT part, seq, chain_hash, pruned_seq, pruned_hash FROM audit_heads ORDER BY part"
# Every chain's rows, chain by chain, each in its order: one pass over the trail, which
# PostgreSQL sorts. No index holds that order since migration 0012, and a query a chain
# would read the whole trail once for each of them.
CHAINS = f"SELECT {_COLUMNS} FROM audit_events ORDER BY part, seq"  # noqa: S608
RANGE = f"""
SELECT {_COLUMNS} FROM audit_events
 WHERE at >= $1 AND at < $2 AND id > $3 ORDER BY id LIMIT $4
"""  # noqa: S608  # constant column list


async def lock_head(tx: Db, part: int) -> Head:
    row = await tx.fetchrow(LOCK_HEAD, part)
    assert row is not None  # noqa: S101  # the migration creates every partition's head
    return Head(**row)


async def append(tx: Db, part: int, at: datetime, rows: Sequence[Row]) -> None:
    """Insert the rows and move the head to the last one, in one statement."""

    def column(name: str) -> list[object]:
        return [getattr(row, name) for row in rows]

    await tx.execute(
        APPEND,
        part,
        at,
        *(column(name) for name in AUDITED_FIELDS if name not in _SHARED_BY_THE_BATCH),
        rows[-1].seq,
        rows[-1].chain_hash,
    )


@dataclass(frozen=True)
class ChainHead:
    part: int
    seq: int
    chain_hash: bytes
    pruned_seq: int
    pruned_hash: bytes | None


async def heads(db: Db) -> list[ChainHead]:
    return [ChainHead(**row) for row in await db.fetch(HEADS)]


async def chains(db: Db) -> AsyncIterator[Row]:
    """Every row, by partition and then in chain order, streamed with a cursor (needs a
    transaction)."""
    async for row in db.cursor(CHAINS, prefetch=1000):
        yield Row(**row)


async def events_between(
    db: Db, since: datetime, until: datetime, after_id: int, limit: int
) -> list[Row]:
    return [Row(**row) for row in await db.fetch(RANGE, since, until, after_id, limit)]


# Rows are removed as a prefix of each chain (by seq), so what remains still chains from
# the hash of the last removed row. A long transaction can commit a row with an older
# `at` after newer ones; cutting each chain at its first row at or after `before` keeps
# it. Every chain is cut in one statement of each kind, not a statement a chain: with no
# index on (part, seq), a statement a chain would read the trail once for each.
LOCK_HEADS = "SELECT part, seq, pruned_seq FROM audit_heads ORDER BY part FOR UPDATE"
FIRST_KEPT = "SELECT part, min(seq) AS seq FROM audit_events WHERE at >= $1 GROUP BY part"
_CUTS = "unnest($1::smallint[], $2::bigint[]) AS cut(part, seq)"
CUT_HASHES = f"""
SELECT e.part, e.chain_hash FROM audit_events e
  JOIN {_CUTS} ON e.part = cut.part AND e.seq = cut.seq
"""  # noqa: S608  # constants only
PRUNE = f"""
DELETE FROM audit_events e USING {_CUTS} WHERE e.part = cut.part AND e.seq <= cut.seq
"""  # noqa: S608  # constants only
MOVE_STARTS = """
UPDATE audit_heads h SET pruned_seq = cut.seq, pruned_hash = cut.hash
  FROM unnest($1::smallint[], $2::bigint[], $3::bytea[]) AS cut(part, seq, hash)
 WHERE h.part = cut.part
"""


async def prune(tx: Db, before: datetime) -> int:
    """Runs in a transaction; the append-only trigger lets DELETE through only here."""
    await tx.execute("SET LOCAL ots.audit_prune = 'on'")
    heads = await tx.fetch(LOCK_HEADS)
    first_kept = {row["part"]: row["seq"] for row in await tx.fetch(FIRST_KEPT, before)}
    cuts = {}
    for head in heads:
        cut = first_kept.get(head["part"], head["seq"] + 1) - 1
        if cut > head["pruned_seq"]:
            cuts[head["part"]] = cut
    if not cuts:
        return 0
    parts, seqs = list(cuts), list(cuts.values())
    hashes = {row["part"]: row["chain_hash"] for row in await tx.fetch(CUT_HASHES, parts, seqs)}
    status = await tx.execute(PRUNE, parts, seqs)
    await tx.execute(MOVE_STARTS, parts, seqs, [hashes.get(part) for part in parts])
    return int(status.split()[-1])
