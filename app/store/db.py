"""The connection pool, bounded acquisition and the errors that mean "database unavailable"."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from app.config import DatabaseConfig
from app.metrics import POOL_WAITING

log = logging.getLogger(__name__)

Db = asyncpg.Connection | asyncpg.pool.PoolConnectionProxy

# Failures that say nothing about the request, only that PostgreSQL cannot be used right
# now: lost or refused connections, an exhausted pool, our own statement/lock timeouts.
UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncio.TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.QueryCanceledError,
    asyncpg.LockNotAvailableError,
    # PostgreSQL broke a lock cycle by rolling this transaction back: nothing was done,
    # and a retry would go through (the chain writers retry it themselves first).
    asyncpg.DeadlockDetectedError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.TooManyConnectionsError,
    asyncpg.InternalClientError,
)


# What PostgreSQL ends by rolling the statement back, the database itself being fine: a
# lock or statement timeout, a deadlock. A batch that met one made nothing, so its
# changes can go one by one (app/core/batches.py, app/expiry.py).
ROLLED_BACK = (
    asyncpg.LockNotAvailableError,
    asyncpg.QueryCanceledError,
    asyncpg.DeadlockDetectedError,
)


# A connection found dead usually means all of them are (a failover, a restart, an admin
# killing backends): the pool's other idle connections are replaced on their next
# checkout, not each found dead by a request of its own. With 10 pooled connections, a
# restart cost up to 10 requests a 503 each; now the one that found it out.
# InternalClientError is here because a backend killed while idle can leave its
# connection mid-error ("cannot switch to state 12; another operation (2) is in
# progress") until the driver sees the socket close.
CONNECTION_LOST = (
    OSError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.AdminShutdownError,
    asyncpg.InternalClientError,
)


def as_columns(rows: Iterable[Sequence[object]]) -> list[list[object]]:
    """Rows of parameters as a column each: a batched statement takes arrays."""
    return [list(column) for column in zip(*rows, strict=True)]


def quiet_dead_connection_closes(loop: asyncio.AbstractEventLoop) -> None:
    """Replacing expired connections (above), asyncpg closes the old ones in tasks of its
    own that nobody awaits; closing one that is already dead fails (BrokenPipeError), and
    asyncio logs that as an ERROR with a traceback: 4 of them in a fault run that killed
    306 backends. They are expected, so a warning, without the traceback; every other
    unretrieved task error keeps asyncio's own report."""
    default = loop.get_exception_handler()

    def handle(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        task, exc = context.get("future"), context.get("exception")
        coro = task.get_coro() if isinstance(task, asyncio.Task) else None
        if isinstance(exc, ConnectionError) and getattr(coro, "__qualname__", "") == _CLOSE:
            log.warning("closing a dead pooled connection failed: %s", type(exc).__name__)
        elif default is not None:
            default(loop, context)
        else:
            loop.default_exception_handler(context)

    loop.set_exception_handler(handle)


_CLOSE = asyncpg.Connection.close.__qualname__  # "Connection.close"


def _connection_lost(exc: BaseException) -> bool:
    # TimeoutError is an OSError too: a slow database or an exhausted pool, not a lost one.
    return isinstance(exc, CONNECTION_LOST) and not isinstance(exc, TimeoutError)


class StoreUnavailable(Exception):
    """PostgreSQL could not answer within the configured bounds."""


async def create_pool(config: DatabaseConfig) -> asyncpg.Pool:
    """A pool whose every wait is bounded; min_size 0 so startup does not need the database."""
    return await asyncpg.create_pool(
        config.url,
        min_size=0,
        max_size=config.pool_max,
        timeout=config.connect_timeout,
        command_timeout=config.command_timeout,
        reset=_no_session_state,
        server_settings={
            "application_name": "ots",
            "statement_timeout": str(config.statement_timeout_ms),
            "lock_timeout": str(config.lock_timeout_ms),
            "idle_in_transaction_session_timeout": str(config.idle_in_transaction_timeout_ms),
        },
    )


async def _no_session_state(conn: asyncpg.Connection) -> None:
    """Replaces asyncpg's reset query on release (CLOSE ALL, RESET ALL, UNLISTEN *,
    advisory unlock): one more round trip per checkout, for session state this service
    never creates. Its settings are SET LOCAL or connection parameters, it holds no
    cursors, listens for nothing and takes advisory locks only per transaction. asyncpg
    still rolls back a transaction left open before calling this."""


POOL_CLOSE_SECONDS = 5.0


async def close_pool(pool: asyncpg.Pool) -> None:
    """Wait for connections in use to come back, but not forever."""
    try:
        await asyncio.wait_for(pool.close(), POOL_CLOSE_SECONDS)
    except TimeoutError:
        pool.terminate()


@dataclass(frozen=True)
class Store:
    """The pool plus the acquire bound (asyncpg's own acquire waits forever), behind a
    first-come, first-served gate.

    Why the gate: asyncpg's pool queue is not fair. A connection released while requests
    wait goes to whichever request asks next, and the waiter woken for it, finding it
    gone, queues again at the back. At 64 concurrent conceals on 10 connections p99 was
    165 to 219 ms against a p50 of 39 to 47 ms; with the gate, whose waiters are served
    in order, 60 to 83 ms against 42 to 50, at the same throughput (bench/FINDINGS.md).
    """

    pool: asyncpg.Pool
    acquire_timeout: float
    gate: asyncio.Semaphore = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "gate", asyncio.Semaphore(self.pool.get_max_size()))

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Db]:
        try:
            conn = await self._acquire()
            try:
                yield conn
            finally:
                await self._release(conn)
        except UNAVAILABLE as exc:
            if _connection_lost(exc):
                await self.pool.expire_connections()
            raise StoreUnavailable(type(exc).__name__) from exc

    async def _acquire(self) -> asyncpg.pool.PoolConnectionProxy:
        """The gate, then a connection, within one acquire_timeout for both."""
        POOL_WAITING.inc()
        try:
            async with asyncio.timeout(self.acquire_timeout):
                await self.gate.acquire()
                try:
                    return await self.pool.acquire()
                except BaseException:
                    self.gate.release()
                    raise
        finally:
            POOL_WAITING.dec()

    async def _release(self, conn: asyncpg.pool.PoolConnectionProxy) -> None:
        """By now the work has committed or rolled back. A connection that dies while the
        pool resets it (asyncpg then terminates it; the next acquire opens a new one) must
        not turn a committed reveal into a 503: its value would be gone, never shown."""
        try:
            with suppress(*UNAVAILABLE):
                await self.pool.release(conn)
        finally:
            self.gate.release()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Db]:
        async with self.connection() as conn, conn.transaction():
            yield conn

    @asynccontextmanager
    async def snapshot(self) -> AsyncIterator[Db]:
        """A read-only transaction whose statements all see one snapshot (REPEATABLE READ):
        for reads that must agree with each other while writers go on."""
        async with (
            self.connection() as conn,
            conn.transaction(isolation="repeatable_read", readonly=True),
        ):
            yield conn
