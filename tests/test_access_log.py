"""The access log: lines in the handler's own format, written a few at a time, none lost
at exit, none cut across writes."""

from __future__ import annotations

import asyncio
import atexit
import io
import json
import logging
import subprocess
import sys
import time
from collections.abc import Iterator

import aiohttp
import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpServer

from app import access_log
from app.access_log import FLUSH_SECONDS, WRITE_BYTES, RouteAccessLogger
from app.logs import configure
from tests.processes import BOUND

TIME_WIDTH = len("2026-11-30 02:44:53,676")


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    """Logging configured as the service does, its handler writing here; put back after."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    out = io.StringIO()
    yield out
    root.handlers[:] = handlers
    root.setLevel(level)
    if RouteAccessLogger.lines is not None:
        atexit.unregister(RouteAccessLogger.lines.flush)
        RouteAccessLogger.lines = None


def _configure(fmt: str, out: io.StringIO) -> logging.StreamHandler[io.StringIO]:
    configure("INFO", fmt)
    handler = logging.getLogger().handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(out)
    return handler


async def _hello(request: web.Request) -> web.Response:
    return web.json_response({"ok": True}, headers={"X-Request-ID": "trace-7"})


async def _served_line(aiohttp_server: AiohttpServer, out: io.StringIO) -> str:
    app = web.Application()
    app.router.add_post("/api/v2/secret/{key}/reveal", _hello)
    server = await aiohttp_server(app, access_log_class=RouteAccessLogger)
    url = server.make_url("/api/v2/secret/k3y/reveal")
    async with aiohttp.ClientSession() as session, session.post(url) as response:
        assert response.status == 200
    lines = (await _written(out)).splitlines()
    assert len(lines) == 1
    return lines[0]


async def _written(out: io.StringIO) -> str:
    """What the stream holds once anything was written to it, within BOUND seconds."""
    for _ in range(int(BOUND / 0.01)):
        if out.getvalue():
            break
        await asyncio.sleep(0.01)
    return out.getvalue()


def _logging_line(handler: logging.Handler) -> str:
    """What a logging call with the same fields formats to (the way before)."""
    record = logging.getLogger("aiohttp.access").makeRecord(
        "aiohttp.access",
        logging.INFO,
        __file__,
        0,
        "%s %s %d",
        ("POST", "/api/v2/secret/{key}/reveal", 200),
        None,
        extra={
            "remote": "127.0.0.1",
            "method": "POST",
            "route": "/api/v2/secret/{key}/reveal",
            "status": 200,
            "duration_ms": 0.0,
            "request_id": "trace-7",
        },
    )
    return handler.format(record)


async def test_a_text_line_is_what_logging_wrote(
    aiohttp_server: AiohttpServer, stream: io.StringIO
) -> None:
    handler = _configure("text", stream)
    line = await _served_line(aiohttp_server, stream)
    expected = _logging_line(handler)
    assert line[TIME_WIDTH:] == expected[TIME_WIDTH:]
    assert "k3y" not in line  # the route's template, never the path
    assert _seconds_ago(line[:TIME_WIDTH]) < BOUND


async def test_a_json_line_has_what_logging_wrote(
    aiohttp_server: AiohttpServer, stream: io.StringIO
) -> None:
    handler = _configure("json", stream)
    line = json.loads(await _served_line(aiohttp_server, stream))
    expected = json.loads(_logging_line(handler))
    assert line["duration_ms"] >= 0
    for fields in (line, expected):
        del fields["duration_ms"]
    assert line.keys() == expected.keys()
    assert _seconds_ago(line["time"]) < BOUND
    del line["time"], expected["time"]
    assert line == expected


async def test_a_line_waits_then_is_written_without_a_request(stream: io.StringIO) -> None:
    _configure("text", stream)
    lines = RouteAccessLogger.lines
    assert lines is not None
    started = time.monotonic()
    lines.add("POST", "127.0.0.1", "/api/v2/secret/conceal", 200, 0.001, None)
    assert stream.getvalue() == ""  # not one write a line
    written = await _written(stream)
    assert written.endswith(" INFO aiohttp.access [None] POST /api/v2/secret/conceal 200\n")
    assert time.monotonic() - started >= FLUSH_SECONDS * 0.9


def _seconds_ago(asctime: str) -> float:
    """How long ago a logging-style local time ("2026-11-30 02:44:53,676") was."""
    seconds, millis = asctime.split(",")
    written = time.mktime(time.strptime(seconds, "%Y-%m-%d %H:%M:%S")) + int(millis) / 1000
    return abs(time.time() - written)


def test_writes_hold_whole_lines_and_fit_a_pipe() -> None:
    lines = [f"{i:05d} {'x' * 93}\n" for i in range(200)]  # 100 bytes each
    long_line = "y" * (WRITE_BYTES + 10) + "\n"
    chunks = access_log._chunks([*lines[:50], long_line, *lines[50:]])
    assert "".join(chunks) == "".join([*lines[:50], long_line, *lines[50:]])
    assert long_line in chunks  # alone, as one write
    for chunk in chunks:
        assert chunk.endswith("\n")
        assert len(chunk) <= WRITE_BYTES or chunk == long_line
    assert len(chunks) <= 8  # about 40 lines a write, not one


def test_lines_waiting_at_exit_are_written() -> None:
    script = (
        "import asyncio\n"
        "from app.logs import configure\n"
        "from app.access_log import RouteAccessLogger\n"
        "configure('INFO', 'json')\n"
        "async def main():\n"
        "    lines = RouteAccessLogger.lines\n"
        "    lines.add('GET', '10.0.0.1', '/api/v2/status', 200, 0.002, 'last-words')\n"
        "asyncio.run(main())\n"
    )
    result = subprocess.run(  # noqa: S603  # our own interpreter and module
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=BOUND, check=True
    )
    written = [json.loads(line) for line in result.stderr.splitlines()]
    assert [line["request_id"] for line in written] == ["last-words"]


async def test_a_closed_stream_loses_lines_not_requests(stream: io.StringIO) -> None:
    handler = _configure("text", stream)
    lines = RouteAccessLogger.lines
    assert lines is not None
    stream.close()
    lines.add("POST", "127.0.0.1", "/api/v2/status", 200, 0.001, None)
    lines.flush()  # no exception: logging's own handler swallows these too
    reopened = io.StringIO()
    handler.setStream(reopened)
    lines.add("GET", "127.0.0.1", "/api/v2/status", 200, 0.001, "after")
    lines.flush()
    assert reopened.getvalue().endswith("[after] GET /api/v2/status 200\n")
    assert "POST" not in reopened.getvalue()  # the lost line is not kept for later
