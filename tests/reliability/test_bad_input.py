"""Abuse at the HTTP layer, sent as raw bytes to the real service: a clear 4xx every time,
never a 500, nothing quoted into the log, and the service stays up."""

from __future__ import annotations

import asyncio
import signal

import pytest

from tests.processes import BOUND, start_server, wait_ready
from tests.reliability.figures import publish

KEY = "markerkey0000000000000000000000000000000000000abc"  # looks like a link key
TOKEN = "MARKER-TOKEN-5e5e5e5e"
CONCEAL = b"POST /api/v2/secret/conceal HTTP/1.1\r\nHost: x\r\n"
STATUS = b"GET /api/v2/status HTTP/1.1\r\nHost: x\r\n"


def _json(body: bytes) -> bytes:
    head = b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
    return CONCEAL + head + body


# name -> (raw request, the status it must get)
ABUSE: dict[str, tuple[bytes, int]] = {
    # 413 from the declared length alone: only 8 bytes of the 100 MB are ever sent.
    "declared 100 MB json": (
        CONCEAL + b"Content-Type: application/json\r\nContent-Length: 100000000\r\n\r\n{secret:",
        413,
    ),
    "declared 100 MB form": (
        CONCEAL + b"Content-Type: application/x-www-form-urlencoded\r\n"
        b"Content-Length: 100000000\r\n\r\nsecret=",
        413,
    ),
    "JSON nested 5,000 deep": (_json(b'{"a":' * 5000 + b"1" + b"}" * 5000), 400),
    "5,000-digit integer": (_json(b'{"secret":{"secret":"a","ttl":' + b"9" * 5000 + b"}}"), 400),
    "invalid UTF-8": (_json(b'{"secret":{"secret":"\xff\xfe"}}'), 400),
    "wrong content type": (
        CONCEAL + b"Content-Type: text/csv\r\nContent-Length: 3\r\n\r\na,b",
        415,
    ),
    "Content-Length with Transfer-Encoding": (
        CONCEAL + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
    ),
    "unknown Transfer-Encoding": (CONCEAL + b"Transfer-Encoding: gzip\r\n\r\n", 400),
    "bad chunk size": (CONCEAL + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
    "two Content-Lengths": (CONCEAL + b"Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}", 400),
    "negative Content-Length": (CONCEAL + b"Content-Length: -1\r\n\r\n", 400),
    "obs-fold header": (STATUS + b"X-A: b\r\n c\r\n\r\n", 400),
    "bare CR in a header": (STATUS + b"X-A: b\rc\r\n\r\n", 400),
    "NUL in the token header": (
        STATUS + b"Authorization: Bearer " + TOKEN.encode() + b"\x00\r\n\r\n",
        400,
    ),
    "100 kB header": (STATUS + b"X-A: " + b"a" * 100_000 + b"\r\n\r\n", 400),
    "500 headers": (STATUS + b"".join(b"X-%d: a\r\n" % i for i in range(500)) + b"\r\n", 400),
    "100 kB path": (b"GET /api/v2/secret/" + b"a" * 100_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    "key in a request line with a bad version": (
        b"GET /secret/" + KEY.encode() + b" HTTP/9.9\r\nHost: x\r\n\r\n",
        400,
    ),
    "NUL in the method": (b"G\x00T /api/v2/status HTTP/1.1\r\nHost: x\r\n\r\n", 400),
}


async def _send(port: int, raw: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(raw)
        await writer.drain()
        return await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), BOUND)
    finally:
        writer.close()


async def _cut_short(port: int) -> None:
    """Declares 500 bytes, sends one, and hangs up while the service waits for the rest."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(CONCEAL + b"Content-Type: application/json\r\nContent-Length: 500\r\n\r\n{")
    await writer.drain()
    await asyncio.sleep(0.3)
    writer.close()
    del reader


@pytest.mark.usefixtures("db")
async def test_http_abuse_gets_4xx_and_leaves_the_service_up(database_url: str) -> None:
    base, proc = start_server(database_url, OTS_LOG_LEVEL="DEBUG")
    port = int(base.rsplit(":", 1)[1])
    statuses = {}
    try:
        await wait_ready(base)
        for name, (raw, _) in ABUSE.items():
            head = await _send(port, raw)
            statuses[name] = int(head.split(b" ", 2)[1])
        await _cut_short(port)
        after = await _send(port, _json(b'{"secret":{"secret":"still up"}}'))
    finally:
        proc.send_signal(signal.SIGTERM)
        logs, _ = proc.communicate(timeout=BOUND)
    publish(
        "http_abuse",
        cases=len(ABUSE) + 1,
        server_errors=sum(1 for status in statuses.values() if status >= 500),
        unexpected_status=sum(1 for name, (_, want) in ABUSE.items() if statuses[name] != want),
    )
    assert statuses == {name: status for name, (_, status) in ABUSE.items()}
    assert after.startswith(b"HTTP/1.1 200")
    for forbidden in ("ERROR", "Traceback", " 500", KEY, TOKEN, "aaaaaaaaaa"):
        assert forbidden not in logs, forbidden
    assert logs.count("Malformed HTTP request refused") >= 10  # the refusals were logged
