"""Who is calling: anonymous, or an account proven by HTTP Basic `custid:apitoken`."""

from __future__ import annotations

import base64
import binascii

from aiohttp import web

from app.core.accounts import authenticate, refuse
from app.core.context import Caller
from app.http.callers import anonymous_caller
from app.keys import SERVICES


async def caller_of(request: web.Request) -> Caller:
    """Credentials that are sent must be usable: there is no fall-back to anonymous, so a
    client with a typo in its token learns of it instead of creating anonymous secrets."""
    caller = anonymous_caller(request)
    header = request.headers.get("Authorization")
    if header is None:
        return caller
    svc = request.config_dict[SERVICES]
    credentials = _basic(header)
    if credentials is None:
        await refuse(svc, caller, "")
    custid, token = credentials
    return await authenticate(svc, caller, custid, token)


def _basic(header: str) -> tuple[str, str] | None:
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, ValueError):
        return None
    custid, sep, token = decoded.partition(":")
    # NUL: no account name or token holds one, and PostgreSQL text cannot (a 500 before).
    if not (sep and custid and token) or "\x00" in decoded:
        return None
    return custid, token
