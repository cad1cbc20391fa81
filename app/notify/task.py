"""The worker as a background task of every process, like the expiry sweeper."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from app.keys import NOTIFY_TASK, SERVICES, SETTINGS
from app.metrics import NOTIFY_ROUNDS
from app.notify import webhook
from app.notify.mail import Outgoing
from app.notify.worker import Deliverer, deliver_due
from app.store import outbox
from app.store.db import StoreUnavailable

log = logging.getLogger(__name__)
PURGE_EVERY = 100  # rounds between purges of settled rows
PURGE_BATCH = 1000


async def run_notify(d: Deliverer) -> None:
    rounds = 0
    while True:
        claimed = 0
        try:
            claimed = await deliver_due(d)
            if rounds % PURGE_EVERY == 0:
                async with d.store.connection() as db:
                    await outbox.purge_settled(db, d.config.retention_seconds, PURGE_BATCH)
            NOTIFY_ROUNDS.labels("ok").inc()
        except StoreUnavailable as exc:
            NOTIFY_ROUNDS.labels("unavailable").inc()
            log.warning("notification round skipped, database unavailable: %s", exc)
        except Exception:
            # One bad round must not end the loop.
            NOTIFY_ROUNDS.labels("failed").inc()
            log.exception("notification round failed")
        rounds += 1
        if claimed < d.config.batch:  # a full batch means more are due: go on at once
            await asyncio.sleep(d.config.poll_interval)


@contextlib.asynccontextmanager
async def notify_task(app: web.Application) -> AsyncIterator[None]:
    settings, svc = app[SETTINGS], app[SERVICES]
    async with webhook.session(settings.notify.webhook_deny) as http:
        deliverer = Deliverer(
            store=svc.store,
            keys=svc.keys,
            audit_key=svc.audit_key,
            config=settings.notify,
            http=http,
            mail=Outgoing.build(settings.notify.smtp, settings.locales[0], settings.base_url),
        )
        task = asyncio.create_task(run_notify(deliverer))
        app[NOTIFY_TASK] = task
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
