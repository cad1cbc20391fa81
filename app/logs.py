"""Logging: text or JSON lines (OTS_LOG_FORMAT), the request id on every line; the
access log (app.access_log) writes in the same format through the same handler."""

from __future__ import annotations

import logging
import sys
from contextvars import ContextVar

from aiohttp.http_exceptions import HttpProcessingError
from pythonjsonlogger.json import JsonFormatter

from app import access_log
from app.config import ConfigError

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
FORMATS = ("text", "json")
REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)


class RequestIdFilter(logging.Filter):
    """Adds the current request's id (or None) to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = REQUEST_ID.get()
        return True


class MalformedRequestFilter(logging.Filter):
    """aiohttp logs a request it cannot parse at ERROR, quoting the offending bytes: a
    request line holds a link key, a header an API token. Keep only the kind of error."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, HttpProcessingError):
            record.msg, record.args = (
                "Malformed HTTP request refused: %s %s",
                (
                    error.code,
                    type(error).__name__,
                ),
            )
            record.exc_info, record.exc_text = None, None
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


def configure(level: str = "INFO", fmt: str = "text") -> None:
    if level.upper() not in LEVELS:
        raise ConfigError(f"OTS_LOG_LEVEL must be one of {', '.join(LEVELS)}")
    if fmt not in FORMATS:
        raise ConfigError(f"OTS_LOG_FORMAT must be one of {', '.join(FORMATS)}")
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RequestIdFilter())
    handler.addFilter(MalformedRequestFilter())
    handler.setFormatter(_formatter(fmt))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    access_log.use(handler, fmt)


def _formatter(fmt: str) -> logging.Formatter:
    if fmt == "json":
        return JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        )
    return logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")
