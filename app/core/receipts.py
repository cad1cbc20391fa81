"""The sender's side: reading a receipt and burning its secret."""

from __future__ import annotations

from dataclasses import dataclass

from app import crypto, metrics
from app.core.audit import caused_by
from app.core.context import Caller, Services
from app.core.errors import NotAuthorized, SecretUndecryptable, UnknownSecret
from app.core.limits import throttle
from app.core.unlock import decrypt, master_key, open_live
from app.store import secrets as store
from app.store.db import Db
from app.store.secrets import LiveSecret, Receipt

DOUBLE_CHECK = "Double check that passphrase"
RECENT_DAYS = 30
RECENT_LIMIT = 1000  # upstream has no paging; this bounds one response


@dataclass(frozen=True)
class ReceiptView:
    receipt: Receipt
    key: str
    share_key: str | None  # while the secret is live
    value: str | None = None  # a generated password, once, shortly after creation


@dataclass(frozen=True)
class BurnOutcome:
    view: ReceiptView
    burned: bool  # False: not confirmed, nothing destroyed


async def show_receipt(
    svc: Services, caller: Caller, key: str, *, claim_value: bool = True
) -> ReceiptView:
    """The receipt as stored; the only write is claiming a generated value, once."""
    await throttle(svc, caller, "show_metadata")
    view = await _recorded_view(svc, key, caller)
    live = await _claim_value(svc, view) if claim_value else None
    if live is None or view.share_key is None:
        return view
    value = decrypt(svc, live, view.share_key, b"").decode()
    return ReceiptView(view.receipt, key, view.share_key, value)


async def _claim_value(svc: Services, view: ReceiptView) -> LiveSecret | None:
    """The live generated secret, if this read is the one that gets to show it."""
    receipt = view.receipt
    if not (receipt.value_claimable and view.share_key and receipt.secret_id):
        return None
    async with svc.store.connection() as db:
        if not await store.claim_generated_value(db, receipt.id, svc.generated_value_window):
            return None
        return await store.peek_secret(db, receipt.secret_id)


async def burn(
    svc: Services, caller: Caller, key: str, passphrase: str, confirmed: bool
) -> BurnOutcome:
    """Destroy the secret behind a receipt; burning what is already gone is a no-op."""
    await throttle(svc, caller, "burn_secret")
    async with svc.store.connection() as db:
        view = await _view(db, svc, key)
        live = await store.peek_secret_of(db, view.receipt.id) if view.share_key else None
    if live is None or view.share_key is None:
        return BurnOutcome(view, burned=False)
    burned = False
    try:
        await open_live(svc, caller, live, view.share_key, passphrase, DOUBLE_CHECK)
    except UnknownSecret:
        pass  # revealed or expired meanwhile: nothing left to burn, report what happened
    else:
        if not confirmed:
            return BurnOutcome(view, burned=False)
        event = caused_by(caller, "secret.burned", receipt_ref=live.receipt_id)
        burned = await store.consume_secret(svc.writes.bound(event), live.id, "burned")
        if burned:
            metrics.SECRETS_BURNED.inc()
    async with svc.store.connection() as db:
        return BurnOutcome(await _view(db, svc, key), burned=burned)


async def recent(svc: Services, caller: Caller) -> list[ReceiptView]:
    """An account's receipts of the last 30 days, as upstream lists them."""
    if caller.anonymous:
        raise NotAuthorized
    await throttle(svc, caller, "show_metadata")
    async with svc.store.connection() as db:
        rows = await store.recent_receipts(db, caller.custid, RECENT_DAYS, RECENT_LIMIT)
    return [
        ReceiptView(receipt, _open_receipt_key(svc, receipt.key_id, sealed), None)
        for receipt, sealed in rows
        if sealed is not None
    ]


async def _view(db: Db, svc: Services, key: str) -> ReceiptView:
    """The receipt behind `key`."""
    receipt = None
    if crypto.is_link_key(key):
        receipt = await store.get_receipt(db, crypto.lookup_id(svc.keys, key))
    return _viewed(svc, key, receipt)


async def _recorded_view(svc: Services, key: str, caller: Caller) -> ReceiptView:
    """_view, the read recorded as the caller's by the read's own statement (which may
    go in a batch: no connection is held here meanwhile)."""
    receipt = None
    if crypto.is_link_key(key):
        receipt_id = crypto.lookup_id(svc.keys, key)
        event = caused_by(caller, "receipt.viewed", receipt_ref=receipt_id)
        receipt = await store.read_receipt(svc.writes.bound(event), receipt_id)
    return _viewed(svc, key, receipt)


def _viewed(svc: Services, key: str, receipt: Receipt | None) -> ReceiptView:
    if receipt is None:
        raise UnknownSecret(key)
    share_key = None
    if receipt.secret_id is not None and receipt.share_key_sealed is not None:
        share_key = _open_share_key(svc, key, receipt.key_id, receipt.share_key_sealed)
    return ReceiptView(receipt, key, share_key)


def _open_receipt_key(svc: Services, key_id: int, sealed: bytes) -> str:
    try:
        return crypto.open_for_owner(master_key(svc, key_id), sealed).decode()
    except crypto.DecryptionError:
        raise SecretUndecryptable("an account's receipt key did not open") from None


def _open_share_key(svc: Services, key: str, key_id: int, sealed: bytes) -> str:
    try:
        return crypto.open_for_receipt(master_key(svc, key_id), key, sealed).decode()
    except crypto.DecryptionError:
        raise SecretUndecryptable("a receipt's share key did not open") from None
