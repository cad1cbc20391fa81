"""Notifications a use case enqueues itself: the recipient's mail, which needs the share
link (everything else is enqueued by the database, from the audit trail)."""

from __future__ import annotations

from app.core.context import Services
from app.links import share_url
from app.notify import payload
from app.store import outbox
from app.store.db import Db
from app.store.secrets import NewSecret


async def enqueue_recipient_mail(
    tx: Db, svc: Services, new: NewSecret, share_key: str, address: str
) -> None:
    """In the create's transaction: the mail exists exactly when the secret does."""
    url = share_url(svc.base_url, new.share_domain, share_key)
    key_id, sealed = payload.seal(svc.keys, payload.RecipientMail(address, url))
    await outbox.enqueue_recipient_mail(tx, new.receipt_id, new.custid, key_id, sealed)
