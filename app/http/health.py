"""Probes and scrapes: /healthz says the process answers (no database: a slow database must not get
pods killed); /readyz says it can reach PostgreSQL within a short bound."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app.http.responses import json_response
from app.keys import SERVICES, SETTINGS
from app.metrics import POOL_IDLE, POOL_SIZE

log = logging.getLogger(__name__)


async def healthz(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    store = request.config_dict[SERVICES].store
    try:
        async with asyncio.timeout(request.config_dict[SETTINGS].ready_timeout):
            async with store.connection() as db:
                await db.fetchval("SELECT 1")
    except Exception as exc:  # any failure to reach the database: not ready
        log.warning("not ready: %s", type(exc).__name__)
        response = json_response({"status": "unavailable"}, status=503)
        response.headers["Retry-After"] = "5"
        return response
    return json_response({"status": "ready"})


async def metrics(request: web.Request) -> web.Response:
    """Prometheus text format; the pool gauges are read at scrape time."""
    pool = request.config_dict[SERVICES].store.pool
    POOL_SIZE.set(pool.get_size())
    POOL_IDLE.set(pool.get_idle_size())
    response = web.Response(body=generate_latest())
    response.content_type = CONTENT_TYPE_LATEST.split(";")[0]
    return response


def setup(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
