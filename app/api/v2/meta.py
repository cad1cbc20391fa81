"""/api/v2/status, /version and /supported-locales: public, no database."""

from __future__ import annotations

from aiohttp import web

from app import __version__
from app.api.v2 import routes
from app.http.responses import json_response
from app.keys import SETTINGS


async def status(request: web.Request) -> web.Response:
    return json_response({"success": True, "status": "nominal", "locale": _locale(request)})


async def version(request: web.Request) -> web.Response:
    return json_response(
        {"success": True, "version": __version__.split("."), "locale": _locale(request)}
    )


async def supported_locales(request: web.Request) -> web.Response:
    locales = list(request.config_dict[SETTINGS].locales)
    return json_response(
        {
            "success": True,
            "locales": locales,
            "default_locale": locales[0],
            "locale": _locale(request),
        }
    )


def _locale(request: web.Request) -> str:
    """The `locale` parameter if supported, else the default."""
    locales = request.config_dict[SETTINGS].locales
    asked = request.query.get("locale", "")
    return asked if asked in locales else locales[0]


def setup(app: web.Application) -> None:
    routes.add(app, "GET", "/status", status)
    routes.add(app, "GET", "/version", version)
    routes.add(app, "GET", "/supported-locales", supported_locales)
