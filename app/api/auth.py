"""Who is calling: anonymous, or an account proven by HTTP Basic credentials."""

from __future__ import annotations

from aiohttp import web

from app.core.context import Caller
from app.core.errors import NotAuthorized


def caller_of(request: web.Request) -> Caller:
    """Credentials that are sent must be valid: no silent fall-back to anonymous.

    Accounts and API tokens are not issued yet, so any credentials are refused.
    """
    if request.headers.get("Authorization"):
        raise NotAuthorized
    return Caller(client=request.remote or "unknown")
