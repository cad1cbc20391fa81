"""/api/v2/private/* and its /receipt/* aliases: the sender's receipt and burn."""

from __future__ import annotations

import time

from aiohttp import web

from app.api.auth import caller_of
from app.api.parsing import as_bool, as_text, read_params
from app.api.v2 import records, routes
from app.core import receipts as core
from app.http.responses import json_response
from app.keys import SERVICES, SETTINGS


async def show(request: web.Request) -> web.Response:
    """Changes no state; a generated password is handed out once, shortly after creation,
    and never to a HEAD request, whose body nobody reads."""
    caller = await caller_of(request)
    view = await core.show_receipt(
        request.config_dict[SERVICES],
        caller,
        request.match_info["key"],
        claim_value=request.method != "HEAD",
    )
    return json_response(
        {
            "success": True,
            "record": records.receipt_record(view, request.config_dict[SETTINGS].base_url),
            "details": records.receipt_details(view),
        }
    )


async def burn(request: web.Request) -> web.Response:
    """Needs `continue: true`; burning a secret that is already gone is a 200 no-op."""
    caller = await caller_of(request)
    params = await read_params(request)
    outcome = await core.burn(
        request.config_dict[SERVICES],
        caller,
        request.match_info["key"],
        as_text(params.get("passphrase"), "passphrase"),
        as_bool(params.get("continue")),
    )
    details = records.receipt_details(outcome.view)
    details["title"] = "Secret burned" if outcome.view.receipt.state == "burned" else ""
    return json_response(
        {
            # Burned now or gone already (idempotent); False only when not confirmed.
            "success": outcome.view.share_key is None,
            "custid": caller.custid,
            "record": records.receipt_record(outcome.view, request.config_dict[SETTINGS].base_url),
            "details": details,
        }
    )


async def recent(request: web.Request) -> web.Response:
    """An account's receipts of the last 30 days (needs credentials)."""
    caller = await caller_of(request)
    views = await core.recent(request.config_dict[SERVICES], caller)
    listed = [records.listing_record(view) for view in views]
    received = [record for record in listed if record["is_destroyed"]]
    return json_response(
        {
            "success": True,
            "custid": caller.custid,
            "count": len(listed),
            "records": listed,
            "details": {
                "type": "list",
                "since": int(time.time()) - core.RECENT_DAYS * 86400,
                "now": int(time.time()),
                "has_items": bool(listed),
                "received": received,
                "notreceived": [record for record in listed if not record["is_destroyed"]],
            },
        }
    )


def setup(app: web.Application) -> None:
    for prefix in ("/private", "/receipt"):
        routes.add(app, "GET", f"{prefix}/recent", recent)
        routes.add(app, "GET", prefix + "/{key}", show)
        routes.add(app, "POST", prefix + "/{key}/burn", burn)
