"""/api/v2/audit: the audit trail for admin accounts, a page at a time."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from app.api.auth import caller_of
from app.api.parsing import as_int
from app.api.v2 import routes
from app.core import trail
from app.http.responses import json_response
from app.keys import SERVICES
from app.store.audit import Row

DEFAULT_LIMIT = 100
_FAR_FUTURE = datetime(9999, 1, 1, tzinfo=UTC)
_FIRST, _LAST = datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC)
_LAST_ID = 2**63 - 1  # audit_events.id is a bigint


async def events(request: web.Request) -> web.Response:
    """`since`/`until` (ISO 8601 or epoch), `after` (the last id seen), `limit` (<= 1000)."""
    caller = await caller_of(request)
    # Who may read comes before what was asked: a bad `since` is no business of a stranger.
    trail.require_reader(caller)
    query = request.query
    since = _in_utc(trail.moment(query.get("since", "0"), "since"))
    until = _in_utc(trail.moment(query["until"], "until")) if "until" in query else _FAR_FUTURE
    after = min(max(as_int(query.get("after")) or 0, 0), _LAST_ID)
    limit = min(max(as_int(query.get("limit")) or DEFAULT_LIMIT, 1), trail.PAGE_LIMIT)
    rows = await trail.page(request.config_dict[SERVICES], caller, since, until, after, limit)
    return json_response(
        {
            "success": True,
            "count": len(rows),
            "records": [event_record(row) for row in rows],
            "next_after": rows[-1].id if len(rows) == limit else None,
        }
    )


def _in_utc(moment: datetime) -> datetime:
    """asyncpg converts to UTC, which overflows for a moment whose offset takes it before
    year 1 or past 9999 (0001-01-01T00:00+01:00): before or after every event, so clamped."""
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        return _FIRST if moment.year == 1 else _LAST


EVENT_FIELDS = (
    "id",
    "at",
    "event",
    "outcome",
    "actor",
    "client_ip",
    "user_agent",
    "request_id",
    "receipt_ref",
    "detail",
    "part",
    "seq",
    "chain_hash",
)


def event_record(row: Row) -> dict[str, Any]:
    """An event as the API and the export show it (keys in EVENT_FIELDS order)."""
    return {
        "id": row.id,
        "at": row.at.isoformat(),
        "event": row.event,
        "outcome": row.outcome,
        "actor": row.actor,
        "client_ip": row.client_ip,
        "user_agent": row.user_agent,
        "request_id": row.request_id,
        "receipt_ref": row.receipt_ref.hex() if row.receipt_ref else None,
        "detail": row.detail,
        "part": row.part,
        "seq": row.seq,
        "chain_hash": row.chain_hash.hex(),
    }


def setup(app: web.Application) -> None:
    routes.add(app, "GET", "/audit", events)
