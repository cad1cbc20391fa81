"""One place that turns every failure into the API's JSON error shape."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from app.core.errors import (
    DomainError,
    InvalidRequest,
    LockedOut,
    NotAuthorized,
    SecretUndecryptable,
    UnknownSecret,
    WrongPassphrase,
)
from app.store.db import StoreUnavailable

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
RETRY_AFTER_UNAVAILABLE = 5

_HTTP_TYPES = {
    400: "BadRequest",
    401: "Unauthorized",
    404: "NotFound",
    405: "MethodNotAllowed",
    413: "PayloadTooLarge",
    415: "UnsupportedMediaType",
    422: "FormError",
    429: "LimitExceeded",
    503: "ServiceUnavailable",
}


class ApiError(Exception):
    """An error the edge itself detects (bad JSON, wrong payload shape)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def error_response(
    status: int, message: str, error_type: str | None = None, **extra: Any
) -> web.Response:
    """The body every error has: classic `message` plus the newer `error`/`error_type`."""
    body = {
        **extra,
        "message": message,
        "error": message,
        "error_type": error_type or _HTTP_TYPES.get(status, "Error"),
        "success": False,
    }
    return web.json_response(body, status=status)


def domain_response(exc: DomainError) -> web.Response:
    if isinstance(exc, UnknownSecret):
        return error_response(404, exc.message, "RecordNotFound", secret_key=exc.key)
    if isinstance(exc, LockedOut):
        response = error_response(429, exc.message, retry_after=exc.retry_after)
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    if isinstance(exc, NotAuthorized):
        response = error_response(401, exc.message)
        response.headers["WWW-Authenticate"] = 'Basic realm="ots"'
        return response
    if isinstance(exc, InvalidRequest | WrongPassphrase):
        return error_response(422, exc.message)
    return error_response(400, exc.message)


def unavailable_response(message: str) -> web.Response:
    response = error_response(503, message)
    response.headers["Retry-After"] = str(RETRY_AFTER_UNAVAILABLE)
    return response


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(exc.status, exc.message)
    except DomainError as exc:
        return domain_response(exc)
    except StoreUnavailable:
        log.warning("database unavailable for %s", request.match_info.route.name or "request")
        return unavailable_response("The service is temporarily unavailable")
    except SecretUndecryptable:
        log.error("a stored secret could not be decrypted: check the key ring")
        return unavailable_response("The secret cannot be decrypted right now")
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _http_error(exc)
    except Exception:
        # Never str(exc): it may quote request data. The traceback goes to the log only.
        log.exception("unhandled error")
        return error_response(500, "An unexpected error occurred", "InternalError")


def _http_error(exc: web.HTTPException) -> web.Response:
    response = error_response(exc.status, exc.reason)
    if exc.status == 405 and "Allow" in exc.headers:
        response.headers["Allow"] = exc.headers["Allow"]
    return response
