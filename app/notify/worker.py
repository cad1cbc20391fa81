"""The delivery worker: claim due outbox rows, deliver them outside any transaction, then
settle each: delivered, retried later (exponential backoff with jitter) or dead.

At least once: a row is settled only after its delivery returned, so a process killed
in between leaves a lease that runs out, and the row is delivered again (with the same
event id, which receivers use to drop the duplicate).
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass

import aiohttp

from app import crypto
from app.config import Notify
from app.core import audit
from app.core.audit import caused_by
from app.core.context import SYSTEM
from app.metrics import NOTIFICATIONS
from app.notify import mail, payload, webhook
from app.notify.ssrf import Refused
from app.store import customers, outbox
from app.store.db import Store
from app.store.outbox import Notification

log = logging.getLogger(__name__)
_JITTER = random.SystemRandom()


class Permanent(Exception):
    """Trying again cannot help (a refused URL, a removed webhook): dead at once."""


@dataclass(frozen=True)
class Deliverer:
    store: Store
    keys: crypto.KeyRing
    audit_key: bytes
    config: Notify
    http: aiohttp.ClientSession
    mail: mail.Outgoing


async def deliver_due(d: Deliverer) -> int:
    """One round: claim up to a batch, deliver them concurrently; how many were claimed."""
    async with d.store.transaction() as tx:
        due = await outbox.claim_due(tx, d.config.batch, d.config.lease_seconds)
    outcomes = await asyncio.gather(*(deliver_one(d, n) for n in due), return_exceptions=True)
    for note, outcome in zip(due, outcomes, strict=True):
        if isinstance(outcome, Exception):
            # Not settled (the database went away?): the lease runs out and it goes again.
            log.warning("notification %d not settled: %s", note.id, type(outcome).__name__)
    return len(due)


async def deliver_one(d: Deliverer, note: Notification) -> None:
    try:
        await send(d, note)
    except (Permanent, Refused) as exc:
        await bury(d, note, str(exc))
    except Exception as exc:  # any failure of one delivery is a retry
        await failed(d, note, _describe(exc))
    else:
        async with d.store.connection() as db:
            settled = await outbox.mark_delivered(db, note)
        NOTIFICATIONS.labels(note.channel, "delivered" if settled else "late").inc()


async def send(d: Deliverer, note: Notification) -> None:
    if note.channel != "webhook" and not d.config.smtp.host:
        # Not worth eight tries over hours: dead at once, and the trail says why.
        raise Permanent("no SMTP relay configured (OTS_SMTP_HOST)")
    if note.channel == "webhook":
        await _post(d, note)
    elif note.payload_sealed is not None and note.key_id is not None:
        to = payload.unseal(d.keys, note.key_id, note.payload_sealed)
        sender = None if note.custid == "anon" else note.custid
        await mail.send(
            d.config.smtp, mail.recipient_mail(d.mail, to.address, to.share_url, sender)
        )
    else:
        async with d.store.connection() as db:
            wanted = await customers.notify_sender(db, note.custid)
        if not wanted:  # switched off, or the account disabled, since it was queued
            raise Permanent("the account no longer wants these mails")
        shortid = note.secret_shortkey or "?"
        msg = mail.sender_mail(d.mail, note.custid, note.event, shortid, note.occurred_at)
        await mail.send(d.config.smtp, msg)


async def _post(d: Deliverer, note: Notification) -> None:
    async with d.store.connection() as db:
        hook = await customers.get_webhook(db, note.custid)
    if hook is None:
        raise Permanent("webhook no longer configured")
    secret = crypto.open_for_notify(d.keys.master(hook.key_id), hook.secret_sealed)
    config = d.config
    await webhook.post(d.http, hook.url, secret, note, config.webhook_deny, config.webhook_timeout)


def backoff(config: Notify, attempts: int) -> float:
    """base x 2^(attempts-1), capped, then between half and all of it (jitter), so rows
    that failed together do not all come back together."""
    delay = min(config.backoff_max, config.backoff_base * 2 ** min(attempts - 1, 30))
    return float(delay / 2 + _JITTER.uniform(0, delay / 2))


async def failed(d: Deliverer, note: Notification, error: str) -> None:
    if note.attempts >= d.config.max_attempts:
        await bury(d, note, f"{error} (after {note.attempts} attempts)")
        return
    async with d.store.connection() as db:
        await outbox.schedule_retry(db, note, backoff(d.config, note.attempts), error)
    NOTIFICATIONS.labels(note.channel, "retry").inc()
    log.info("notification %d: attempt %d failed: %s", note.id, note.attempts, error)


async def bury(d: Deliverer, note: Notification, error: str) -> None:
    """Dead-letter: the row stays (state dead, last_error) and the trail records it."""
    async with d.store.transaction() as tx:
        if not await outbox.mark_dead(tx, note, error):
            return
        detail = f"{note.channel} {note.event} {note.event_id}: {error}"[: outbox.ERROR_CHARS]
        event = caused_by(
            SYSTEM, "notification.dead", "failure", receipt_ref=note.receipt_ref, detail=detail
        )
        await audit.record(tx, d.audit_key, [event])
    NOTIFICATIONS.labels(note.channel, "dead").inc()
    log.warning("notification %d dead after %d attempts: %s", note.id, note.attempts, error)


def _describe(exc: Exception) -> str:
    """A short reason that never carries a URL (it may hold a token) or a response body."""
    if isinstance(exc, webhook.HttpFailure | mail.MailFailure):
        return str(exc)
    return type(exc).__name__
