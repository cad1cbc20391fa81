"""/api/v1/*: the classic routes, flat parameters from the form, query string or JSON."""

from __future__ import annotations

from aiohttp import web

from app.api.auth import caller_of
from app.api.parsing import as_text, conceal_request, generate_request, read_params
from app.api.v1 import records, routes
from app.config import body_limit
from app.core import receipts, secrets
from app.core.errors import NotAuthorized, UnknownSecret, WrongPassphrase
from app.http.responses import json_response
from app.keys import SERVICES, SETTINGS


async def status(request: web.Request) -> web.Response:
    return json_response({"status": "nominal", "locale": "en"})


async def authcheck(request: web.Request) -> web.Response:
    if (await caller_of(request)).anonymous:
        raise NotAuthorized
    return json_response({"status": "nominal", "locale": "en"})


async def share(request: web.Request) -> web.Response:
    caller = await caller_of(request)
    limit = body_limit(request.config_dict[SERVICES].plan(caller.plan).max_secret_bytes)
    params = await read_params(request, limit)
    created = await secrets.conceal(
        request.config_dict[SERVICES],
        caller,
        conceal_request(params),
    )
    return json_response(records.created_hash(created))


async def generate(request: web.Request) -> web.Response:
    caller = await caller_of(request)
    params = await read_params(request)
    created = await secrets.generate(
        request.config_dict[SERVICES],
        caller,
        generate_request(params, shown_at_creation=True),
    )
    return json_response({**records.created_hash(created), "value": created.value})


async def reveal(request: web.Request) -> web.Response:
    """`continue` is implied; a wrong passphrase reads as an unknown secret and destroys
    nothing (upstream v1)."""
    caller = await caller_of(request)
    params = await read_params(request)
    key = request.match_info["key"]
    passphrase = as_text(params.get("passphrase"), "passphrase")
    try:
        revealed = await secrets.reveal(
            request.config_dict[SERVICES], caller, key, passphrase, True
        )
    except WrongPassphrase:
        raise UnknownSecret(key) from None
    return json_response(
        {
            "value": revealed.value,
            "secret_key": key,
            "share_domain": request.config_dict[SETTINGS].base_url,
        }
    )


async def metadata(request: web.Request) -> web.Response:
    caller = await caller_of(request)
    view = await receipts.show_receipt(
        request.config_dict[SERVICES],
        caller,
        request.match_info["key"],
        claim_value=request.method != "HEAD",
    )
    body = records.receipt_hash(view)
    if view.value is not None:
        body["value"] = view.value
    body["passphrase_required"] = view.receipt.has_passphrase
    return json_response(body)


async def burn(request: web.Request) -> web.Response:
    """`continue` is implied; burning what is already gone is an error in v1."""
    caller = await caller_of(request)
    params = await read_params(request)
    key = request.match_info["key"]
    outcome = await receipts.burn(
        request.config_dict[SERVICES],
        caller,
        key,
        as_text(params.get("passphrase"), "passphrase"),
        True,
    )
    if not outcome.burned:
        raise UnknownSecret(key)
    # The key named `state` holds the whole metadata hash: an upstream quirk clients parse.
    return json_response(
        {
            "state": records.receipt_hash(outcome.view),
            "secret_shortkey": outcome.view.receipt.secret_shortkey,
        }
    )


async def recent(request: web.Request) -> web.Response:
    caller = await caller_of(request)
    views = await receipts.recent(request.config_dict[SERVICES], caller)
    return json_response([records.receipt_hash(v, with_secret_key=False) for v in views])


def setup(app: web.Application) -> None:
    routes.add(app, "GET", "/status", status)
    routes.add(app, "GET", "/authcheck", authcheck)
    for path in ("/share", "/create"):
        routes.add(app, "POST", path, share)
    routes.add(app, "POST", "/generate", generate)
    routes.add(app, "POST", "/secret/{key}", reveal)
    for prefix in ("/private", "/metadata"):
        routes.add(app, "GET", f"{prefix}/recent", recent)
        routes.add(app, "GET", prefix + "/{key}", metadata)
        routes.add(app, "POST", prefix + "/{key}", metadata)
        routes.add(app, "POST", prefix + "/{key}/burn", burn)
