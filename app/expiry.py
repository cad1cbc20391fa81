"""The background sweeper: reclaims expired rows; expiry itself is enforced in every query."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from app.core import audit
from app.core.audit import caused_by
from app.core.context import Caller
from app.keys import EXPIRY_TASK, SERVICES, SETTINGS
from app.metrics import SECRETS_EXPIRED, SWEEPS, SWEPT_ROWS
from app.store.db import Store, StoreUnavailable
from app.store.expiry import Purged, purge_expired

log = logging.getLogger(__name__)
SYSTEM = Caller(client="", custid="system")  # the sweeper, as an audit actor


async def sweep(store: Store, audit_key: bytes, batch: int) -> Purged:
    """Purge in batches until a batch comes back short, so a backlog drains in one pass."""
    total = Purged(0, 0, 0)
    while True:
        async with store.transaction() as tx:
            purged = await purge_expired(tx, batch)
            await audit.record(
                tx,
                audit_key,
                [
                    caused_by(SYSTEM, "secret.expired", receipt_ref=ref)
                    for ref in purged.expired_receipt_ids
                ],
            )
        total = Purged(
            total.secrets + purged.secrets,
            total.receipts_expired + purged.receipts_expired,
            total.receipts_deleted + purged.receipts_deleted,
        )
        if purged.secrets < batch and purged.receipts_deleted < batch:
            return total


async def run_expiry(store: Store, audit_key: bytes, interval: float, batch: int) -> None:
    while True:
        try:
            purged = await sweep(store, audit_key, batch)
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
        await asyncio.sleep(interval)


@contextlib.asynccontextmanager
async def expiry_task(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    task = asyncio.create_task(
        run_expiry(
            app[SERVICES].store,
            app[SERVICES].audit_key,
            settings.expiry_interval,
            settings.expiry_batch,
        )
    )
    app[EXPIRY_TASK] = task
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
