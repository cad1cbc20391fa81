"""v1 clients expect every error as a 404 with a `message` (and `secret_key` where known)."""

from __future__ import annotations

from aiohttp import web

from app.api.errors import ApiError
from app.core.errors import DomainError, UnknownSecret
from app.http import Handler
from app.http.responses import json_response

PREFIX = "/api/v1/"


@web.middleware
async def v1_error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Runs inside the general error middleware, and only for /api/v1 paths. What it does
    not translate (an unavailable database: 503 with Retry-After, so clients back off
    instead of reading "gone"; a bug: 500) the general middleware answers."""
    if not request.path.startswith(PREFIX):
        return await handler(request)
    try:
        return await handler(request)
    except Exception as exc:
        response = _v1_response(exc)
        if response is None:
            raise
        return response


def _v1_response(exc: Exception) -> web.Response | None:
    if isinstance(exc, UnknownSecret):
        return v1_error(exc.message, secret_key=exc.key)
    if isinstance(exc, DomainError | ApiError):
        return v1_error(exc.message)
    if isinstance(exc, web.HTTPException) and exc.status >= web.HTTPBadRequest.status_code:
        return v1_error(exc.reason)
    return None


def v1_error(message: str, **extra: str) -> web.Response:
    return json_response({**extra, "message": message}, status=404)
