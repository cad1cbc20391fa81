"""One place that turns every failure into the API's JSON error shape."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from aiohttp import web

from app.core.errors import (
    DomainError,
    Forbidden,
    InvalidRequest,
    LockedOut,
    NotAuthorized,
    RateLimited,
    SecretUndecryptable,
    UnknownSecret,
    WrongPassphrase,
)
from app.http import Handler
from app.http.responses import json_response
from app.store.db import StoreUnavailable

log = logging.getLogger(__name__)

RETRY_AFTER_UNAVAILABLE = 5

_HTTP_TYPES = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
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
    return json_response(body, status=status)


# Most specific first: the first matching class decides the status.
_DOMAIN_STATUS: tuple[tuple[type[DomainError], HTTPStatus], ...] = (
    (UnknownSecret, HTTPStatus.NOT_FOUND),
    (LockedOut, HTTPStatus.TOO_MANY_REQUESTS),
    (RateLimited, HTTPStatus.TOO_MANY_REQUESTS),
    (NotAuthorized, HTTPStatus.UNAUTHORIZED),
    (Forbidden, HTTPStatus.FORBIDDEN),
    (InvalidRequest, HTTPStatus.UNPROCESSABLE_ENTITY),
    (WrongPassphrase, HTTPStatus.UNPROCESSABLE_ENTITY),
)


def domain_response(exc: DomainError) -> web.Response:
    status = next(
        (s for kind, s in _DOMAIN_STATUS if isinstance(exc, kind)), HTTPStatus.BAD_REQUEST
    )
    error_type = "RecordNotFound" if isinstance(exc, UnknownSecret) else None
    response = error_response(status, exc.message, error_type, **exc.details())
    if isinstance(exc, LockedOut | RateLimited):
        response.headers["Retry-After"] = str(exc.retry_after)
    if isinstance(exc, NotAuthorized):
        response.headers["WWW-Authenticate"] = 'Basic realm="ots"'
    return response


def unavailable_response(message: str) -> web.Response:
    response = error_response(503, message)
    response.headers["Retry-After"] = str(RETRY_AFTER_UNAVAILABLE)
    return response


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < HTTPStatus.BAD_REQUEST:
            raise
        return _http_error(exc)
    except Exception as exc:  # every failure must become a JSON error
        return failure_response(exc)


def failure_response(exc: Exception) -> web.Response:
    if isinstance(exc, ApiError):
        return error_response(exc.status, exc.message)
    if isinstance(exc, DomainError):
        return domain_response(exc)
    if isinstance(exc, StoreUnavailable):
        # The cause's own message says which state the driver was in (e.g. asyncpg's
        # InternalClientError covers several); it quotes no parameters or rows.
        log.warning("database unavailable: %s (%s)", exc, _cause(exc))
        return unavailable_response("The service is temporarily unavailable")
    if isinstance(exc, SecretUndecryptable):
        log.error("a stored secret could not be decrypted: check the key ring")
        return unavailable_response("The secret cannot be decrypted right now")
    # Never str(exc) in the body: it may quote request data. The traceback goes to the log.
    log.error("unhandled error", exc_info=exc)
    return error_response(500, "An unexpected error occurred", "InternalError")


CAUSE_CHARS = 200


def _cause(exc: BaseException) -> str:
    cause = exc.__cause__
    return str(cause)[:CAUSE_CHARS] if cause is not None else "no cause"


def _http_error(exc: web.HTTPException) -> web.Response:
    response = error_response(exc.status, exc.reason)
    if "Allow" in exc.headers:
        response.headers["Allow"] = exc.headers["Allow"]
    return response
