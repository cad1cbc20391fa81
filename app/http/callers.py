"""The caller as the request shows it, before any credentials are looked at."""

from __future__ import annotations

from aiohttp import web

from app.core.context import Caller
from app.http.clients import client_address
from app.http.requests import request_id


def anonymous_caller(request: web.Request) -> Caller:
    return Caller(
        client=client_address(request),
        user_agent=request.headers.get("User-Agent"),
        request_id=request_id(request),
    )
