"""Failures on page routes render as pages, in the caller's language, never as JSON."""

from __future__ import annotations

import logging

from aiohttp import web

from app.api.errors import RETRY_AFTER_UNAVAILABLE, ApiError
from app.core.errors import DomainError, SecretUndecryptable
from app.http import Handler
from app.store.db import StoreUnavailable
from app.web.render import render

log = logging.getLogger(__name__)


@web.middleware
async def page_error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Runs inside the API's error middleware and leaves /api paths to it."""
    if request.path.startswith("/api/"):
        return await handler(request)
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < web.HTTPBadRequest.status_code:
            raise
        message = "error.not_found" if exc.status in (404, 405) else "error.invalid"
        return render(request, "error.html", exc.status, message=message)
    except (StoreUnavailable, SecretUndecryptable):
        response = render(request, "error.html", 503, message="error.unavailable")
        response.headers["Retry-After"] = str(RETRY_AFTER_UNAVAILABLE)
        return response
    except (DomainError, ApiError):
        return render(request, "error.html", 422, message="error.invalid")
    except Exception:
        log.exception("unhandled error on a page")
        return render(request, "error.html", 500, message="error.generic")
