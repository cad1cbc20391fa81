"""A TCP proxy in front of PostgreSQL that can sever every connection through it the way
a failover, a node loss or a load balancer dropping idle flows does: the server side
goes at once, the client learns of it only when it next uses the connection."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg

CHUNK = 65536


class SeveringProxy:
    def __init__(self, upstream: tuple[str, int] | str) -> None:
        self._upstream = upstream
        self._pairs: list[_Pair] = []
        self._server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for pair in self._pairs:
            pair.close_both()
        await self._server.wait_closed()

    def sever(self) -> int:
        """Close every server side now; each client side closes at its next write."""
        for pair in self._pairs:
            pair.sever()
        severed, self._pairs = len(self._pairs), []
        return severed

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if isinstance(self._upstream, str):
            up_reader, up_writer = await asyncio.open_unix_connection(self._upstream)
        else:
            up_reader, up_writer = await asyncio.open_connection(*self._upstream)
        pair = _Pair(writer, up_writer)
        self._pairs.append(pair)
        await asyncio.gather(
            pair.pump(reader, up_writer, client_side=True),
            pair.pump(up_reader, writer, client_side=False),
        )


class _Pair:
    def __init__(self, client: asyncio.StreamWriter, server: asyncio.StreamWriter) -> None:
        self.client, self.server = client, server
        self.severed = False

    def sever(self) -> None:
        self.severed = True
        self.server.close()

    def close_both(self) -> None:
        self.client.close()
        self.server.close()

    async def pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, client_side: bool
    ) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(CHUNK):
                if self.severed:
                    if client_side:  # the client spoke on a dead connection: it learns now
                        self.client.close()
                    return
                writer.write(data)
                await writer.drain()
        if not self.severed:
            self.close_both()


def through(url: str, port: int) -> str:
    """`url` with its server swapped for the proxy on 127.0.0.1:`port`."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k not in ("host", "port")]
    credentials = parts.netloc.rpartition("@")[0]
    netloc = f"{credentials}@127.0.0.1:{port}" if credentials else f"127.0.0.1:{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, urlencode(query), ""))


@contextlib.asynccontextmanager
async def severing_proxy(db: asyncpg.Connection) -> AsyncIterator[SeveringProxy]:
    """A proxy to the server `db` is connected to."""
    proxy = SeveringProxy(await _server_address(db))
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.stop()


async def _server_address(db: asyncpg.Connection) -> tuple[str, int] | str:
    """Where `db` is connected: a TCP address, or the path of a Unix socket."""
    host = await db.fetchval("SELECT host(inet_server_addr())")
    port = int(await db.fetchval("SHOW port"))
    if host is not None:
        return (host, port)
    directory = (await db.fetchval("SHOW unix_socket_directories")).split(",")[0].strip()
    return f"{directory}/.s.PGSQL.{port}"
