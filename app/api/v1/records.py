"""The v1 metadata hash: integer TTLs and timestamps, `recipient` a list."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from app.api.v2.records import epoch
from app.core.receipts import ReceiptView
from app.core.rules import obscure_email
from app.core.secrets import Created

Hash = dict[str, Any]


def created_hash(created: Created) -> Hash:
    """Right after a create every TTL is whole."""
    at = epoch(created.created)
    return {
        "custid": created.custid,
        "metadata_key": created.receipt_key,
        "secret_key": created.share_key,
        "ttl": created.ttl,
        "metadata_ttl": created.receipt_ttl,
        "secret_ttl": created.ttl,
        "state": "new",
        "updated": at,
        "created": at,
        "recipient": [obscure_email(created.recipient)] if created.recipient else [],
        "share_domain": created.share_domain or "",
        "passphrase_required": created.has_passphrase,
    }


def receipt_hash(view: ReceiptView, *, with_secret_key: bool = True) -> Hash:
    """`metadata_ttl` and `secret_ttl` are the seconds left, as upstream's Redis TTLs were."""
    receipt = view.receipt
    now = datetime.now(UTC)
    created = epoch(receipt.created) or 0
    secret_left = created + receipt.secret_ttl - int(now.timestamp())
    record: Hash = {
        "custid": receipt.custid,
        "metadata_key": view.key,
        "secret_key": view.share_key,
        "ttl": receipt.secret_ttl,
        "metadata_ttl": max(int((receipt.expires_at - now).total_seconds()), 0),
        "secret_ttl": max(secret_left, 0) if view.share_key else None,
        "state": receipt.state,
        "updated": epoch(receipt.updated),
        "created": created,
        "recipient": [receipt.recipients] if receipt.recipients else [],
        "share_domain": receipt.share_domain or "",
    }
    if receipt.state == "received":
        record["received"] = epoch(receipt.received)
    if not view.share_key:  # consumed, burned or expired: no link, no time left
        del record["secret_key"], record["secret_ttl"]
    elif not with_secret_key:
        del record["secret_key"]
    return record
