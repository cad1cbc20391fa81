"""Who is calling: anonymous, or an account proven by HTTP Basic `custid:apitoken`."""

from __future__ import annotations

import base64
import binascii

from aiohttp import web

from app.api.clients import client_address
from app.core.accounts import authenticate
from app.core.context import Caller
from app.core.errors import NotAuthorized
from app.keys import SERVICES


async def caller_of(request: web.Request) -> Caller:
    """Credentials that are sent must be usable: there is no fall-back to anonymous, so a
    client with a typo in its token learns of it instead of creating anonymous secrets."""
    client = client_address(request)
    header = request.headers.get("Authorization")
    if header is None:
        return Caller(client=client)
    custid, token = _basic(header)
    return await authenticate(request.app[SERVICES], custid, token, client)


def _basic(header: str) -> tuple[str, str]:
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic":
        raise NotAuthorized
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, ValueError):
        raise NotAuthorized from None
    custid, sep, token = decoded.partition(":")
    if not (sep and custid and token):
        raise NotAuthorized
    return custid, token
