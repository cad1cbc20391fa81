"""The access log: a line per request naming its route template, never its path (paths
hold link keys), written a few lines at a time.

Why not a logging call per request: the record, the formatter and the flush took about
20 µs a request (json: 28), 6 % of a conceal's CPU on the service's one core; a line made
here and written with others takes about 2 (bench/FINDINGS.md, fourteenth round). As
nginx's `access_log ... buffer= flush=`: a line waits at most FLUSH_SECONDS, and a
process's exit writes what waits (a SIGKILL loses at most that much).
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import select
import time
from typing import ClassVar, TextIO

import orjson
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

# Probes and scrapes arrive every few seconds: they are logged at DEBUG only.
QUIET_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})
FLUSH_SECONDS = 0.2
# A write is at most this long, cut at a line's end: a pipe takes a write of up to
# PIPE_BUF whole, so the lines of several workers on one stderr never interleave.
WRITE_BYTES = select.PIPE_BUF


class AccessLines:
    """Lines in the handler's format (see app.logs), kept until FLUSH_SECONDS after the
    first of them, then written through the handler's stream under its lock."""

    def __init__(self, handler: logging.StreamHandler[TextIO], fmt: str, name: str) -> None:
        self._handler = handler
        self._json = fmt == "json"
        self._name = name
        self._lines: list[str] = []
        self._flush_due: asyncio.TimerHandle | None = None
        self._second = -1
        self._second_text = ""

    def add(
        self, method: str, remote: str | None, route: str, status: int, took: float, rid: str | None
    ) -> None:
        """A request's line: `took` in seconds, `rid` its request id."""
        now = time.time()
        if self._json:
            line = orjson.dumps(
                {
                    "time": self._asctime(now),
                    "level": "INFO",
                    "logger": self._name,
                    "message": f"{method} {route} {status}",
                    **_fields(method, remote, route, status, took, rid),
                }
            ).decode()
        else:
            line = f"{self._asctime(now)} INFO {self._name} [{rid}] {method} {route} {status}"
        self._lines.append(line + "\n")
        if self._flush_due is None:
            try:
                self._flush_due = asyncio.get_running_loop().call_later(FLUSH_SECONDS, self.flush)
            except RuntimeError:  # no loop to wait on: write it now
                self.flush()

    def _asctime(self, now: float) -> str:
        """logging.Formatter's default time, local, with milliseconds; the second's part
        made once a second."""
        second = int(now)
        if second != self._second:
            self._second = second
            self._second_text = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))
        return f"{self._second_text},{int((now - second) * 1000):03d}"

    def flush(self) -> None:
        if self._flush_due is not None:
            self._flush_due.cancel()
            self._flush_due = None
        lines, self._lines = self._lines, []
        if lines:
            self._write(lines)

    def _write(self, lines: list[str]) -> None:
        self._handler.acquire()
        try:
            stream = self._handler.stream
            for chunk in _chunks(lines):
                stream.write(chunk)
                stream.flush()
        except (OSError, ValueError):
            pass  # a closed or broken stderr: as logging, never fail the request for it
        finally:
            self._handler.release()


def _chunks(lines: list[str]) -> list[str]:
    """The lines joined into texts of at most WRITE_BYTES (a longer line stands alone)."""
    chunks: list[str] = []
    current: list[str] = []
    size = 0
    for line in lines:
        if current and size + len(line) > WRITE_BYTES:
            chunks.append("".join(current))
            current, size = [], 0
        current.append(line)
        size += len(line)
    if current:
        chunks.append("".join(current))
    return chunks


def use(handler: logging.StreamHandler[TextIO], fmt: str) -> None:
    """Access lines go through `handler`'s stream in format `fmt` from now on; whatever
    waits is written at exit."""
    previous = RouteAccessLogger.lines
    if previous is not None:
        previous.flush()
        atexit.unregister(previous.flush)
    RouteAccessLogger.lines = AccessLines(handler, fmt, "aiohttp.access")
    atexit.register(RouteAccessLogger.lines.flush)


class RouteAccessLogger(AbstractAccessLogger):
    # Set by use() (app.logs.configure); until then each line is a logging call.
    lines: ClassVar[AccessLines | None] = None

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        route = route_template(request)
        level = logging.DEBUG if route in QUIET_ROUTES else logging.INFO
        if not self.logger.isEnabledFor(level):
            return
        rid = response.headers.get("X-Request-ID")
        if level == logging.INFO and self.lines is not None:
            self.lines.add(request.method, request.remote, route, response.status, time, rid)
            return
        self.logger.log(
            level,
            "%s %s %d",
            request.method,
            route,
            response.status,
            extra=_fields(request.method, request.remote, route, response.status, time, rid),
        )


def _fields(
    method: str, remote: str | None, route: str, status: int, took: float, rid: str | None
) -> dict[str, object]:
    """What a line tells of a request beside its message: `logging`'s extra, and the keys
    of a JSON line."""
    return {
        "remote": remote,
        "method": method,
        "route": route,
        "status": status,
        "duration_ms": round(took * 1000, 1),
        "request_id": rid,
    }


def route_template(request: web.BaseRequest) -> str:
    try:
        match_info = getattr(request, "match_info", None)
    except AssertionError:  # a request aiohttp could not parse was never routed
        match_info = None
    resource = match_info.route.resource if match_info is not None else None
    return resource.canonical if resource is not None else "<unmatched>"
