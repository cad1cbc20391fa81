"""`python -m app audit verify | export | prune` and `python -m app keys retire`."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from datetime import UTC, datetime

from app.api.v2.audit import EVENT_FIELDS, event_record
from app.core import audit, trail
from app.core.accounts import OPERATOR
from app.core.audit import caused_by
from app.core.context import Services
from app.core.errors import InvalidRequest
from app.store import keys as key_store


async def run(svc: Services, args: argparse.Namespace) -> int:
    if args.action == "verify":
        return await verify(svc)
    if args.action == "export":
        await export(svc, args)
        return 0
    removed = await trail.prune(svc, trail.moment(args.before, "--before"), OPERATOR)
    print(f"pruned {removed} events before {args.before}; the chains still verify from there")
    return 0


async def verify(svc: Services) -> int:
    checked, broken = await trail.verify(svc)
    if broken is not None:
        print(f"audit trail BROKEN at {broken}", file=sys.stderr)
        return 1
    print(f"audit trail intact: {checked} events in {audit.PARTITIONS} chains")
    return 0


async def export(svc: Services, args: argparse.Namespace) -> None:
    """Streams to stdout, a page at a time, for SIEM import."""
    since = trail.moment(args.since, "--since") if args.since else datetime(1970, 1, 1, tzinfo=UTC)
    until = trail.moment(args.until, "--until") if args.until else datetime.now(UTC)
    writer = csv.DictWriter(sys.stdout, EVENT_FIELDS) if args.format == "csv" else None
    if writer:
        writer.writeheader()
    async for row in trail.export(svc, since, until):
        record = event_record(row)
        if writer:
            writer.writerow(record)
        else:
            print(json.dumps(record, separators=(",", ":")))


async def retire_key(svc: Services, key_id: int) -> int:
    """Record that a master key leaves the ring, once nothing sealed under it is left."""
    async with svc.store.transaction() as tx:
        in_use = await key_store.rows_sealed_with(tx, key_id)
        if in_use:
            raise InvalidRequest(
                f"key {key_id} still seals {in_use} live rows; retire it after they expire"
            )
        await audit.record(
            tx, svc.audit_key, [caused_by(OPERATOR, "key.retired", detail=str(key_id))]
        )
    print(f"key {key_id} retired: remove it from the key ring now")
    return 0
