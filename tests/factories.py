"""Small keyword-default helpers that create test data through the real API."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import asyncpg
from aiohttp import web
from aiohttp.test_utils import TestClient

# Test-only keys (index key and master key 1); never used outside tests.
TEST_KEYS = (
    "idx:JFu+2hHqPW8qNviA9XzXRPB94/aGZR7Xzy2tpE3sJmw= "
    "1:u1sHbh3zOnYGlgWWXucXjAZDEJVXnU9m48dCTY+p2gw="
)
SECOND_KEY = "2:Iu71cG2HgODmuuo5lBA6FKNW21bXak64Es4kgFf5FUs="

Client = TestClient[web.Request, web.Application]
V2 = "/api/v2"
WINDOW_MARGIN = 5.0  # seconds: far longer than any rate-limit test's requests take


@dataclass(frozen=True)
class Pair:
    """The two capabilities a create hands out, and the whole response body."""

    secret_key: str
    receipt_key: str
    body: dict[str, Any]


async def conceal(client: Client, secret: str = "hello", **fields: Any) -> Pair:  # noqa: S107  # test data
    return await _create(client, "conceal", {"secret": secret, **fields})


async def generate(client: Client, **fields: Any) -> Pair:
    return await _create(client, "generate", fields)


async def _create(client: Client, kind: str, fields: dict[str, Any]) -> Pair:
    response = await client.post(f"{V2}/secret/{kind}", json={"secret": fields})
    body = await response.json()
    assert response.status == 200, body
    record = body["record"]
    return Pair(record["secret"]["key"], record["metadata"]["key"], body)


async def reveal(client: Client, key: str, **fields: Any) -> tuple[int, dict[str, Any]]:
    response = await client.post(f"{V2}/secret/{key}/reveal", json={"continue": True, **fields})
    return response.status, await response.json()


async def burn(client: Client, key: str, **fields: Any) -> tuple[int, dict[str, Any]]:
    response = await client.post(f"{V2}/private/{key}/burn", json={"continue": True, **fields})
    return response.status, await response.json()


async def get(client: Client, path: str) -> tuple[int, dict[str, Any]]:
    response = await client.get(f"{V2}{path}")
    return response.status, await response.json()


async def early_in_a_rate_window(db: asyncpg.Connection, window_seconds: int) -> None:
    """Wait (at most `WINDOW_MARGIN` seconds) until PostgreSQL's clock is far from the end
    of a rate-limit window. Windows are aligned on the epoch (app/store/ratelimits.py): a
    test's few requests that straddle a boundary are counted in two windows, and one that
    expects the limit's refusal gets a 200 (one did in a CI run: 200, 200, 200, 200, 429)."""
    left = await db.fetchval(
        "SELECT $1::int - mod(extract(epoch FROM now()), $1::int)::float8", window_seconds
    )
    if left < WINDOW_MARGIN:
        await asyncio.sleep(left + 0.05)


async def raw_post(client: Client, path: str, headers: bytes, body: bytes) -> bytes:
    """A POST written byte for byte, with header values no HTTP client library would send
    (`headers`: whole lines, each ending in CRLF); the whole answer, as sent."""
    server = client.server
    reader, writer = await asyncio.open_connection(server.host, server.port)
    try:
        writer.write(
            b"POST "
            + path.encode()
            + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            + headers
            + b"Content-Length: %d\r\n\r\n" % len(body)
            + body
        )
        await writer.drain()
        return await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
