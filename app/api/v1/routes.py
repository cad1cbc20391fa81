"""v1 routes live under /api/v1."""

from __future__ import annotations

from aiohttp import web

from app.api import routes
from app.http import Handler

PREFIX = "/api/v1"


def add(app: web.Application, method: str, path: str, handler: Handler) -> None:
    routes.add(app, method, PREFIX + path, handler)
