"""The background sweeper: reclaims expired rows; expiry itself is enforced in every query."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from app.core import audit
from app.core.audit import caused_by
from app.core.context import SYSTEM, Services
from app.keys import EXPIRY_TASK, SERVICES, SETTINGS
from app.metrics import SECRETS_EXPIRED, SWEEPS, SWEPT_ROWS
from app.store.db import StoreUnavailable
from app.store.expiry import Cursor, Purged, purge_receipts, purge_secrets, purge_stale

log = logging.getLogger(__name__)


async def sweep(svc: Services, batch: int) -> Purged:
    """Purge in batches until a batch comes back short, so a backlog drains in one pass.
    Each batch's events go on a chain reserved from this process's, so requests here
    never wait on the head a batch holds until it commits."""
    total, cursor = Purged(0, 0, 0), Cursor()
    while True:
        async with svc.chains.reserved() as part, svc.store.transaction() as tx:
            gone, expired, secrets_upto = await purge_secrets(tx, batch, cursor.secrets)
            # Before the receipts go: the notification trigger looks each one up, and a
            # receipt past its life too would otherwise take its expiry notice with it.
            events = [caused_by(SYSTEM, "secret.expired", receipt_ref=ref) for ref in expired]
            await audit.record(tx, svc.audit_key, events, part=part)
            deleted, receipts_upto = await purge_receipts(tx, batch, cursor.receipts)
        total = Purged(
            total.secrets + gone,
            total.receipts_expired + len(expired),
            total.receipts_deleted + deleted,
        )
        cursor = Cursor(secrets_upto, receipts_upto)
        if gone < batch and deleted < batch:
            async with svc.store.connection() as db:
                await purge_stale(db)
            return total


async def run_expiry(svc: Services, interval: float, batch: int) -> None:
    while True:
        try:
            purged = await sweep(svc, batch)
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
            app[SERVICES],
            settings.expiry_interval,
            settings.expiry_batch,
        )
    )
    app[EXPIRY_TASK] = task
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
