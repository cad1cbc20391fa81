"""An account's notification settings (admin CLI): its webhook and the sender's mail."""

from __future__ import annotations

import secrets
from collections.abc import Sequence

from app import crypto
from app.config import IPNetwork
from app.core import audit
from app.core.accounts import OPERATOR
from app.core.audit import caused_by
from app.core.context import Caller, Services
from app.core.errors import InvalidRequest
from app.notify.ssrf import Refused, check_configured
from app.store import customers as store
from app.store.customers import Webhook

SECRET_PREFIX = "whsec_"  # noqa: S105  # a prefix, the random part follows
MIN_SECRET_CHARS = 24


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


async def set_webhook(
    svc: Services,
    email: str,
    url: str,
    deny: Sequence[IPNetwork],
    secret: str | None = None,
    *,
    by: Caller = OPERATOR,
) -> str:
    """Point the account's events at `url`; returns the signing secret (kept only sealed)."""
    try:
        check_configured(url, deny)
    except Refused as exc:
        raise InvalidRequest(str(exc)) from None
    secret = secret or new_secret()
    if len(secret) < MIN_SECRET_CHARS:
        raise InvalidRequest(f"the signing secret must have at least {MIN_SECRET_CHARS} characters")
    key_id = svc.keys.active_id
    sealed = crypto.seal_for_notify(svc.keys.master(key_id), secret.encode())
    await _change(svc, email, "webhook.configured", by, Webhook(url, key_id, sealed))
    return secret


async def remove_webhook(svc: Services, email: str, *, by: Caller = OPERATOR) -> None:
    await _change(svc, email, "webhook.removed", by, None)


async def set_notify_sender(svc: Services, email: str, on: bool, *, by: Caller = OPERATOR) -> None:
    custid = email.strip().lower()
    async with svc.store.transaction() as tx:
        if not await store.set_notify_sender(tx, custid, on):
            raise InvalidRequest(f"no such customer: {custid}")
        event = "notify.sender_on" if on else "notify.sender_off"
        await audit.record(tx, svc.audit_key, [caused_by(by, event, detail=custid)])


async def _change(svc: Services, email: str, event: str, by: Caller, hook: Webhook | None) -> None:
    """The URL is not audited: it may carry a receiver's token."""
    custid = email.strip().lower()
    async with svc.store.transaction() as tx:
        if not await store.set_webhook(tx, custid, hook):
            raise InvalidRequest(f"no such customer: {custid}")
        await audit.record(tx, svc.audit_key, [caused_by(by, event, detail=custid)])
