"""The compliance audit trail: append-only, hash-chained, written in the same transaction
as the change it records.

Why chains per partition: one global chain would make every writer on every pod queue
on a single head row, serialising the whole service on its audit writes; sealing
batches afterwards leaves rows unprotected until the sealer runs and has to reason
about transactions that commit late. Here each transaction picks one of PARTITIONS
chains at random and locks only that chain's head until it commits. Sequence numbers
are assigned under that lock and roll back with the transaction, so a chain has no
gaps: a missing seq means a deleted row, a hash mismatch an edited one, and a head
ahead of its last row a cut tail. With 64 chains, a few hundred concurrent writers
rarely wait on each other.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from app.store import audit as store
from app.store.db import Db

if TYPE_CHECKING:  # context imports chains, which imports this module
    from app.core.context import Caller

PARTITIONS = 64
USER_AGENT_CHARS = 200
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Event:
    """What happened; never a value, passphrase, link key or token."""

    event: str
    outcome: str
    actor: str
    client_ip: str | None = None
    user_agent: str | None = None
    request_id: str | None = None
    receipt_ref: bytes | None = None
    detail: str | None = None


def caused_by(
    caller: Caller,
    event: str,
    outcome: str = "success",
    *,
    receipt_ref: bytes | None = None,
    detail: str | None = None,
) -> Event:
    return Event(
        event=event,
        outcome=outcome,
        actor="anonymous" if caller.anonymous else caller.custid,
        client_ip=caller.client or None,
        user_agent=(caller.user_agent or "")[:USER_AGENT_CHARS] or None,
        request_id=caller.request_id,
        receipt_ref=receipt_ref,
        detail=detail,
    )


def genesis(part: int) -> bytes:
    """Where each chain starts; the migration seeds audit_heads with the same value."""
    return hashlib.sha256(f"ots.audit.v1/{part}".encode()).digest()


def chain_hash(key: bytes, previous: bytes, row: store.Row) -> bytes:
    """Keyed (HMAC-SHA256), so someone with write access to the database alone cannot
    rewrite a row and recompute the chain after it."""
    return _link(_keyed(key), previous, canonical(row))


@functools.lru_cache(maxsize=8)
def _keyed(key: bytes) -> hmac.HMAC:
    """The HMAC with `key` and nothing else; never updated itself, only copied (_link), so
    verifying a trail keys it once, not once a row."""
    return hmac.new(key, digestmod="sha256")


def _link(keyed: hmac.HMAC, previous: bytes, canonical_row: bytes) -> bytes:
    """`keyed`: an HMAC with the key and nothing else, copied rather than re-keyed for
    each row (1.2 against 1.7 µs)."""
    mac = keyed.copy()
    mac.update(previous)
    mac.update(canonical_row)
    return mac.digest()


def canonical(row: store.Row) -> bytes:
    """A stable encoding of every field the hash covers (not `id`, which only orders)."""
    return _canonical(row.part, row.seq, _micros(row.at), row)


def _micros(at: datetime) -> int:
    return (at - _EPOCH) // _MICROSECOND


def _canonical(part: int, seq: int, micros: int, what: Event | store.Row) -> bytes:
    """The JSON array [part, seq, at in µs, event, outcome, actor, client_ip, user_agent,
    request_id, receipt_ref in hex, detail], compact and ASCII-only: byte for byte what
    json.dumps(fields, separators=(",", ":")) gives, which verifies every row written
    so far. Written out, as the sweeper hashes one per expired secret (0.8 against 2.3
    µs); tests/test_audit_chain.py compares the two."""
    ref = _text(what.receipt_ref.hex()) if what.receipt_ref is not None else "null"
    return (
        f"[{part},{seq},{micros},{_text(what.event)},{_text(what.outcome)},"
        f"{_text(what.actor)},{_text(what.client_ip)},{_text(what.user_agent)},"
        f"{_text(what.request_id)},{ref},{_text(what.detail)}]"
    ).encode()


def _text(value: str | None) -> str:
    return "null" if value is None else _JSON_STRING(value)


_MICROSECOND = timedelta(microseconds=1)
# The json module's own string encoder (C), as json.dumps with ensure_ascii uses it.
_JSON_STRING = json.encoder.encode_basestring_ascii


async def record(tx: Db, key: bytes, events: Sequence[Event], *, part: int | None = None) -> None:
    """Append events inside the caller's transaction: they commit or roll back with it.
    `key` is the chain key (crypto.audit_key); `part` a chain (Chains.reserved), else
    one at random. For a change made in one statement, app/core/chains.py writes change
    and events together in one round trip."""
    if not events:
        return
    part = secrets.randbelow(PARTITIONS) if part is None else part
    head = await store.lock_head(tx, part)
    rows = chained(key, part, (head.seq, head.chain_hash), head.at, events)
    await store.append(tx, part, head.at, rows)


def chained(
    key: bytes, part: int, head: tuple[int, bytes], at: datetime, events: Sequence[Event]
) -> list[store.Row]:
    """The events as rows of chain `part`, each hashed over the one before, from `head`
    (its seq and chain hash)."""
    rows, (seq, previous) = [], head
    keyed, micros = _keyed(key), _micros(at)
    for event in events:
        seq += 1
        previous = _link(keyed, previous, _canonical(part, seq, micros, event))
        rows.append(
            store.Row(
                id=0,
                part=part,
                seq=seq,
                at=at,
                event=event.event,
                outcome=event.outcome,
                actor=event.actor,
                client_ip=event.client_ip,
                user_agent=event.user_agent,
                request_id=event.request_id,
                receipt_ref=event.receipt_ref,
                detail=event.detail,
                chain_hash=previous,
            )
        )
    return rows


def chained_alike(
    key: bytes,
    part: int,
    head: tuple[int, bytes],
    at: datetime,
    like: Event,
    receipt_refs: Sequence[str],
) -> list[bytes]:
    """The chain hashes chained() gives events that are `like` but for each one's receipt
    (`receipt_refs`: in hex, as the canonical form holds them), byte for byte
    (tests/test_audit_chain.py), without making the events or rows: only the seq and the
    receipt differ between their canonical forms. The sweeper's, one per expired secret:
    1.6 against 5.2 µs a row with the events made and the rows laid out in arrays
    (bench/FINDINGS.md, sixth round)."""
    hashes, (seq, previous) = [], head
    keyed = _keyed(key)
    start = f"[{part},"
    middle = (
        f",{_micros(at)},{_text(like.event)},{_text(like.outcome)},{_text(like.actor)},"
        f"{_text(like.client_ip)},{_text(like.user_agent)},{_text(like.request_id)},"
    )
    end = f",{_text(like.detail)}]"
    for ref in receipt_refs:
        seq += 1
        previous = _link(keyed, previous, f'{start}{seq}{middle}"{ref}"{end}'.encode())
        hashes.append(previous)
    return hashes


def shared_fields(like: Event) -> list[str | None]:
    """What events chained_alike() hashes have in common, in store.ALIKE_SHARED's order."""
    return [getattr(like, name) for name in store.ALIKE_SHARED]
