"""Route registration for the API edges: every path also answers with a trailing slash
(upstream's router strips it), and every GET answers HEAD."""

from __future__ import annotations

from aiohttp import web

from app.http import Handler


def add(app: web.Application, method: str, path: str, handler: Handler) -> None:
    for variant in (path, path + "/"):
        if method == "GET":
            app.router.add_get(variant, handler)
        else:
            app.router.add_route(method, variant, handler)
