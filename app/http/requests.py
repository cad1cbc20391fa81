"""Request ids: taken from X-Request-ID when sane, otherwise made up; echoed back."""

from __future__ import annotations

import re
import secrets

from aiohttp import web

from app import logs
from app.http import Handler

REQUEST_ID = web.RequestKey("request_id", str)
_SANE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


@web.middleware
async def request_id_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    given = request.headers.get("X-Request-ID", "")
    request[REQUEST_ID] = given if _SANE.match(given) else secrets.token_hex(16)
    logs.REQUEST_ID.set(request[REQUEST_ID])
    response = await handler(request)
    response.headers["X-Request-ID"] = request[REQUEST_ID]
    return response


def request_id(request: web.Request) -> str | None:
    return request.get(REQUEST_ID)
