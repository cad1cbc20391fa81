"""/api/v2/secret/*: conceal, generate, show and reveal."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from app.api.auth import caller_of
from app.api.errors import ApiError
from app.api.parsing import (
    Params,
    as_bool,
    as_text,
    conceal_request,
    generate_request,
    read_params,
)
from app.api.v2 import records, routes
from app.config import body_limit
from app.core import secrets as core
from app.core.context import Caller
from app.core.rules import obscure_email
from app.http.responses import json_response
from app.keys import SERVICES
from app.store.secrets import LiveSecret


async def conceal(request: web.Request) -> web.Response:
    caller = await caller_of(request)
    fields = _nested(await read_params(request, _body_limit(request, caller)))
    created = await core.conceal(
        request.config_dict[SERVICES],
        caller,
        conceal_request(fields),
    )
    return _created_response(created)


async def generate(request: web.Request) -> web.Response:
    caller = await caller_of(request)
    fields = _nested(await read_params(request, _body_limit(request, caller)))
    created = await core.generate(
        request.config_dict[SERVICES],
        caller,
        generate_request(fields),
    )
    return _created_response(created)


async def show(request: web.Request) -> web.Response:
    """Metadata only: a GET never reveals or changes anything (link scanners fetch links)."""
    caller = await caller_of(request)
    key = request.match_info["key"]
    live = await core.show_secret(request.config_dict[SERVICES], caller, key)
    passphrase_ok = live.passphrase_salt is None
    return json_response(
        {
            "success": True,
            "record": records.secret_record(live, key),
            "details": records.secret_details(False, None, passphrase_ok, _owns(caller, live)),
        }
    )


async def reveal(request: web.Request) -> web.Response:
    caller = await caller_of(request)
    params = await read_params(request)
    key = request.match_info["key"]
    confirmed = as_bool(params.get("continue"))
    revealed = await core.reveal(
        request.config_dict[SERVICES],
        caller,
        key,
        as_text(params.get("passphrase"), "passphrase"),
        confirmed,
    )
    record = records.secret_record(revealed.secret, key)
    if revealed.value is not None:
        record.update(state="received", secret_value=revealed.value)
    return json_response(
        {
            "success": True,
            "record": record,
            # A 200 means the passphrase (if any) was right: wrong ones are 422.
            "details": records.secret_details(
                confirmed, revealed.value, True, _owns(caller, revealed.secret)
            ),
        }
    )


def _body_limit(request: web.Request, caller: Caller) -> int:
    return body_limit(request.config_dict[SERVICES].plan(caller.plan).max_secret_bytes)


def _owns(caller: Caller, live: LiveSecret) -> bool:
    return not caller.anonymous and caller.custid == live.custid


def _created_response(created: core.Created) -> web.Response:
    safe = [obscure_email(created.recipient)] if created.recipient else []
    return json_response(
        {
            "success": True,
            "custid": created.custid,
            "record": records.created_records(created),
            "details": {
                "kind": created.kind,
                "recipient": created.recipient or "",
                "recipient_safe": safe,
                "memo": "",
            },
        }
    )


def _nested(params: Params) -> dict[str, Any]:
    """Create bodies nest under `secret`; a flat `secret` string is upstream's 422."""
    fields = params.get("secret")
    if fields is None:
        return {}
    if not isinstance(fields, dict):
        raise ApiError(422, "Incorrect payload format")
    return fields


def setup(app: web.Application) -> None:
    routes.add(app, "POST", "/secret/conceal", conceal)
    routes.add(app, "POST", "/secret/generate", generate)
    routes.add(app, "GET", "/secret/{key}", show)
    routes.add(app, "POST", "/secret/{key}/reveal", reveal)
