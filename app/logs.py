"""Logging set-up and an access log that never prints a link key."""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from app.config import ConfigError


class RouteAccessLogger(AbstractAccessLogger):
    """Logs the route template (`/api/v2/secret/{key}`), never the raw path: paths hold keys."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info(
            "%s %s %s %d %.1fms",
            request.remote,
            request.method,
            route_template(request),
            response.status,
            time * 1000,
        )


def route_template(request: web.BaseRequest) -> str:
    match_info = getattr(request, "match_info", None)
    resource = match_info.route.resource if match_info is not None else None
    return resource.canonical if resource is not None else "<unmatched>"


LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def configure(level: str = "INFO") -> None:
    if level.upper() not in LEVELS:
        raise ConfigError(f"OTS_LOG_LEVEL must be one of {', '.join(LEVELS)}")
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
