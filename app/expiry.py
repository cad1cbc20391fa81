"""The background sweeper: reclaims expired rows; expiry itself is enforced in every query."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import AsyncIterator
from datetime import datetime

import asyncpg
from aiohttp import web

from app.config import SWEEPER_CONNECTIONS
from app.core import audit
from app.core.audit import caused_by
from app.core.context import SYSTEM, Services
from app.keys import EXPIRY_TASK, SERVICES, SETTINGS
from app.metrics import SECRETS_EXPIRED, SWEEP_BATCHES, SWEEPS, SWEPT_ROWS
from app.store import expiry as store
from app.store.db import ROLLED_BACK, Db, Store, StoreUnavailable, close_pool, create_pool
from app.store.expiry import START, Purged, purge_stale

log = logging.getLogger(__name__)


async def sweep(svc: Services, batch: int, rate: float = 0.0) -> Purged:
    """Purge in batches until a read comes back short, so a backlog drains in one pass:
    first the expired secrets, each expiry recorded (their receipts read as expired from
    then on, store.expiry), then the receipts past their life; at most `rate` rows a
    second (0: as fast as it can).
    A receipt outlives its secret (twice its TTL), and one whose secret is still there (a
    pass skips rows other sweepers hold) waits for it: a receipt's deletion takes nothing
    unrecorded with it."""
    pace = Pace(rate)
    gone, since, more = 0, START, True
    while more:
        read_gone, since, more = await _expire_read(svc, batch, since, pace)
        gone += read_gone
    deleted = await _delete_receipts(svc, batch, pace)
    async with svc.store.connection() as db:
        await purge_stale(db)
    return Purged(gone, deleted)


class Pace:
    """A pass's pace: after each batch it waits until the rows so far are due at `rate`
    rows a second.

    Why: a sweep is background work on the same cores as the requests, and unthrottled it
    took as much of them as it could: under the lifecycle load it swept 35,000 to 48,000
    rows a second and raised the load's p99 by 70 to 200 %. PostgreSQL paces its own
    background work the same way (autovacuum's cost delay). The default drains a backlog
    of a million rows in 40 s (bench/FINDINGS.md, seventh round)."""

    def __init__(self, rate: float) -> None:
        self._rate = rate
        self._start = time.monotonic()
        self._rows = 0

    async def took(self, rows: int) -> None:
        self._rows += rows
        if self._rate > 0:
            ahead = self._rows / self._rate - (time.monotonic() - self._start)
            if ahead > 0:
                await asyncio.sleep(ahead)


# Batches read at once: a batch is purged by one statement, but reading costs a round trip
# of its own, and under load each round trip waits its turn on the event loop behind the
# requests. So the sweeper reads four batches' worth, then purges them one statement at a
# time, paced between them.
#
# Why batches of 250 (OTS_EXPIRY_BATCH) and not 1,000 as before: a batch's statement holds
# the event loop while its rows are hashed and encoded, and a core of PostgreSQL while it
# runs, and what the requests lose grows with the length of each hold, not only with the
# rows a second. Under the saturating lifecycle load, a million rows swept at 14,000 rows
# a second raised the load's p99 by 61 and 61 % in batches of 1,000, by 42 and 24 % in
# batches of 250; read with each batch, those took 13,700 rows/s at most. Read four at a
# time, batches of 250 swept 22,300 to 24,600 rows/s and the p99 rose 38 to 122 %, median
# 45 % over five drains, against 30 to 112 %, median 57 % over six, for batches of 1,000
# at 24,000 to 24,700 (bench/FINDINGS.md, eleventh round).
READ_AHEAD = 4


async def _expire_read(
    svc: Services, batch: int, since: datetime, pace: Pace
) -> tuple[int, datetime, bool]:
    """Up to READ_AHEAD batches of expired secrets from `since`, read in one round trip and
    purged a batch per statement, each expiry recorded: how many went, where the next read
    starts, and whether there may be more.

    Why no transaction: under load every round trip of the sweeper waits its turn on the
    event loop behind the requests, so the round trips a batch takes, not its SQL, set the
    pace (six in a transaction; bench/FINDINGS.md)."""
    wanted = batch * READ_AHEAD
    gone = 0
    async with svc.store.connection() as db:
        found = await store.expired(db, wanted, since)
        for part in found.batches(batch):
            if not await _purge_batch(svc, db, part):
                break
            gone += len(part.tids)
            await pace.took(len(part.tids))
        else:
            return gone, found.upto, len(found.tids) == wanted
    # From the read's start: what the statements purged is gone, the rest is taken here.
    SWEEP_BATCHES.labels("transaction").inc()
    taken, upto = await _expire_in_transaction(svc, batch, since)
    await pace.took(taken)
    return gone + taken, upto, taken == batch


async def _purge_batch(svc: Services, db: Db, part: store.Expired) -> bool:
    """One batch as read, purged and recorded in one audited statement; False if it
    could not purge them all, and then it purged none."""
    try:
        await svc.chains.write_alike(
            db, svc.audit_key, store.PURGE_EXPIRED, part.columns(), EXPIRY, part.receipt_refs
        )
    except NOT_MADE_WHOLE:
        return False  # rolled back: the transactional way decides each row
    SWEEP_BATCHES.labels("statement").inc()
    return True


# What makes the batch statement roll back while the database is fine: its guard (a row
# another sweeper took, a row not where the read saw it, the chain head moved), a clash
# on the chain's sequence (a schema before migration 0012), or what any statement can
# meet (ROLLED_BACK: a row held past lock_timeout among them).
NOT_MADE_WHOLE = (asyncpg.SerializationError, asyncpg.UniqueViolationError, *ROLLED_BACK)


async def _expire_in_transaction(
    svc: Services, batch: int, since: datetime
) -> tuple[int, datetime]:
    """_expire_batch the way that takes whatever it can: rows another sweeper holds are
    skipped (they lie behind the cursor; the next pass takes them). Its events go on a
    chain reserved from this process's, so requests here never wait on the head it holds
    until commit."""
    async with svc.chains.reserved() as part, svc.store.transaction() as tx:
        expired, upto = await store.purge_secrets(tx, batch, since)
        await audit.record(tx, svc.audit_key, _expiries(expired), part=part)
    return len(expired), upto


# Every expiry's event but for its receipt.
EXPIRY = caused_by(SYSTEM, "secret.expired")


def _expiries(receipt_ids: list[bytes]) -> list[audit.Event]:
    return [dataclasses.replace(EXPIRY, receipt_ref=ref) for ref in receipt_ids]


async def _delete_receipts(svc: Services, batch: int, pace: Pace) -> int:
    deleted, since = 0, START
    while True:
        async with svc.store.connection() as db:
            batch_deleted, since = await store.purge_receipts(db, batch, since)
        deleted += batch_deleted
        if batch_deleted < batch:
            return deleted
        await pace.took(batch_deleted)


async def run_expiry(svc: Services, interval: float, batch: int, rate: int) -> None:
    """A sweep every `interval` seconds, the first one `interval` after start: a process
    just started serves its first requests before it sweeps."""
    while True:
        await asyncio.sleep(interval)
        try:
            purged = await sweep(svc, batch, rate)
            SWEEPS.labels("ok").inc()
            SWEPT_ROWS.labels("secrets").inc(purged.secrets)
            SWEPT_ROWS.labels("receipts").inc(purged.receipts_deleted)
            SECRETS_EXPIRED.inc(purged.receipts_expired)
            if purged.secrets or purged.receipts_deleted:
                log.info(
                    "expired %d secrets, deleted %d receipts",
                    purged.secrets,
                    purged.receipts_deleted,
                )
        except StoreUnavailable as exc:
            SWEEPS.labels("unavailable").inc()
            log.warning("expiry sweep skipped, database unavailable: %s", exc)
        except Exception:
            # One bad round must not end the loop.
            SWEEPS.labels("failed").inc()
            log.exception("expiry sweep failed")


@contextlib.asynccontextmanager
async def expiry_task(app: web.Application) -> AsyncIterator[None]:
    """The sweeper, on a connection of its own (`SWEEPER_CONNECTIONS`).

    Why not the requests' pool: a sweep took one of its connections for every batch and
    queued behind the requests at its gate for it, and with the pool exhausted it could
    not sweep at all, so an overloaded process stopped reclaiming rows. (Under the bench's
    load it made no measurable difference to the p99: bench/FINDINGS.md, eighth round.)"""
    settings = app[SETTINGS]
    config = dataclasses.replace(settings.database, pool_max=SWEEPER_CONNECTIONS)
    pool = await create_pool(config)  # min_size 0: no connection until the first sweep
    own = dataclasses.replace(app[SERVICES], store=Store(pool, config.acquire_timeout))
    task = asyncio.create_task(
        run_expiry(own, settings.expiry_interval, settings.expiry_batch, settings.expiry_rate)
    )
    app[EXPIRY_TASK] = task
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await close_pool(pool)
