"""Route registration shared by the v2 modules: every path also answers with a trailing slash."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PREFIX = "/api/v2"


def add(app: web.Application, method: str, path: str, handler: Handler) -> None:
    """GET routes answer HEAD too; the slash variant keeps upstream's tolerance."""
    for variant in (PREFIX + path, PREFIX + path + "/"):
        if method == "GET":
            app.router.add_get(variant, handler)
        else:
            app.router.add_route(method, variant, handler)
