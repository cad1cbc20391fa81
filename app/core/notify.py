"""Notifications a use case makes itself: the recipient's mail, which needs the share
link (everything else is enqueued by the database, from the audit trail)."""

from __future__ import annotations

import uuid

from app.core.context import Services
from app.links import share_url
from app.notify import payload
from app.store.secrets import NewSecret, RecipientMail


def recipient_mail(svc: Services, new: NewSecret, share_key: str, address: str) -> RecipientMail:
    """The outbox row of the mail that takes the recipient the share link, sealed: the
    address and the link are never stored in the clear."""
    url = share_url(svc.base_url, new.share_domain, share_key)
    key_id, sealed = payload.seal(svc.keys, payload.RecipientMail(address, url))
    return RecipientMail(uuid.uuid4(), key_id, sealed)
