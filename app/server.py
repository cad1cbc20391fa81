"""create_app(settings): wiring only; nothing here opens a connection or reads the environment."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from aiohttp import web

from app.api import openapi
from app.api.errors import error_middleware
from app.api.v1 import handlers as v1
from app.api.v1.errors import v1_error_middleware
from app.api.v2 import audit, meta, receipts, secrets
from app.config import Settings
from app.core.context import Services
from app.expiry import expiry_task
from app.http import health
from app.http.headers import add_security_headers
from app.http.requests import request_id_middleware
from app.keys import SERVICES, SETTINGS
from app.metrics import metrics_middleware
from app.notify.task import notify_task
from app.store.db import POOL_CLOSE_SECONDS, Store, close_pool, create_pool
from app.web import pages
from app.web.errors import page_error_middleware


def create_app(settings: Settings, *, sweeper: bool = True) -> web.Application:
    # request_id outermost, so error responses carry the id too; v1's 404-for-everything
    # inside the general error shape.
    app = web.Application(
        middlewares=[
            metrics_middleware,
            request_id_middleware,
            error_middleware,
            v1_error_middleware,
            page_error_middleware,
        ],
        client_max_size=settings.max_body_bytes,
        # Bodies are taken as sent and a coded one is refused (read_params): aiohttp's
        # decoding failed on a body that was not what its Content-Encoding said, again
        # after the answer as an unhandled error, and a small body can unpack into a large.
        handler_args={"auto_decompress": False},
    )
    app[SETTINGS] = settings
    app.on_response_prepare.append(add_security_headers)
    app.cleanup_ctx.append(database)
    if sweeper:
        app.cleanup_ctx.append(expiry_task)
        app.cleanup_ctx.append(notify_task)
    for module in (openapi, secrets, receipts, meta, audit, v1, pages, health):
        module.setup(app)
    return app


@contextlib.asynccontextmanager
async def database(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    pool = await create_pool(settings.database)
    store = Store(pool, settings.database.acquire_timeout)
    services = app[SERVICES] = Services.build(settings, store)
    try:
        yield
    finally:
        await services.writes.wait_idle(POOL_CLOSE_SECONDS)
        await services.counts.wait_idle(POOL_CLOSE_SECONDS)
        await close_pool(pool)
