"""Response records: the classic v2 keys plus the newer additive ones, integers throughout."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from app.core.receipts import ReceiptView
from app.core.rules import obscure_email
from app.core.secrets import Created
from app.links import share_url
from app.store.secrets import LiveSecret

Record = dict[str, Any]
MINUTE, HOUR, DAY = 60, 3600, 86400
DESTROYED = ("received", "burned", "expired", "orphaned")


def epoch(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp())


def natural_duration(seconds: int) -> str:
    """Upstream's wording: "60 minutes" for 3600, "24 hours" for 86400."""
    if seconds <= MINUTE:
        return f"{seconds} seconds"
    if seconds <= HOUR:
        return f"{seconds // MINUTE} minutes"
    if seconds <= DAY:
        return f"{seconds // HOUR} hours"
    return f"{seconds // DAY} days"


def secret_record(live: LiveSecret, key: str, state: str = "new") -> Record:
    created = epoch(live.created)
    return {
        "identifier": key,
        "key": key,
        "state": state,
        "secret_ttl": live.ttl,
        "lifespan": live.ttl,
        "shortkey": key[:8],
        "shortid": key[:8],
        "has_passphrase": live.passphrase_salt is not None,
        "verification": False,
        "is_truncated": False,
        "created": created,
        "updated": created,
    }


def created_records(created: Created) -> Record:
    """`record` of a conceal or generate response (no links: clients build them)."""
    at = epoch(created.created)
    metadata = {
        "identifier": created.receipt_key,
        "key": created.receipt_key,
        "custid": created.custid,
        "state": "new",
        "secret_shortkey": created.share_key[:6],
        "secret_identifier": created.share_key,
        "secret_ttl": created.ttl,
        "metadata_ttl": created.receipt_ttl,
        "receipt_ttl": created.receipt_ttl,
        "lifespan": created.receipt_ttl,
        "kind": created.kind,
        "created": at,
        "updated": at,
        "shortkey": created.receipt_key[:8],
        "shortid": created.receipt_key[:8],
        "recipients": obscure_email(created.recipient) if created.recipient else "",
        **_flags("new", show_recipients=created.recipient is not None),
        "is_truncated": False,
        "has_passphrase": created.has_passphrase,
    }
    secret = {
        "identifier": created.share_key,
        "key": created.share_key,
        "state": "new",
        "secret_ttl": created.ttl,
        "lifespan": created.ttl,
        "shortkey": created.share_key[:8],
        "shortid": created.share_key[:8],
        "has_passphrase": created.has_passphrase,
        "verification": False,
        "is_truncated": False,
        "created": at,
        "updated": at,
    }
    return {
        "metadata": metadata,
        "receipt": metadata,
        "secret": secret,
        "share_domain": created.share_domain,
    }


def listing_record(view: ReceiptView) -> Record:
    """A receipt as /private/recent lists it: stored fields, no links or share key."""
    receipt = view.receipt
    key = view.key
    return {
        "identifier": key,
        "key": key,
        "custid": receipt.custid,
        "state": receipt.state,
        "secret_shortkey": receipt.secret_shortkey,
        "secret_ttl": receipt.secret_ttl,
        "metadata_ttl": receipt.receipt_ttl,
        "receipt_ttl": receipt.receipt_ttl,
        "lifespan": receipt.receipt_ttl,
        "kind": receipt.kind,
        "share_domain": receipt.share_domain or "",
        "created": epoch(receipt.created),
        "updated": epoch(receipt.updated),
        "received": epoch(receipt.received),
        "burned": epoch(receipt.burned),
        "expired": epoch(receipt.expired),
        "recipients": receipt.recipients or "",
        "shortkey": key[:8],
        "shortid": key[:8],
        **_flags(receipt.state, show_recipients=bool(receipt.recipients)),
        "is_truncated": False,
        "has_passphrase": receipt.has_passphrase,
    }


def receipt_record(view: ReceiptView, base_url: str) -> Record:
    """`record` of a receipt read or burn: the stored receipt plus links and expiry."""
    receipt = view.receipt
    key = view.key
    share_key = view.share_key or ""
    record = listing_record(view)
    record.update(
        {
            "secret_state": "new" if view.share_key else None,
            "natural_expiration": natural_duration(receipt.secret_ttl),
            "expiration": (epoch(receipt.created) or 0) + receipt.secret_ttl,
            "expiration_in_seconds": receipt.secret_ttl,
            "share_path": f"secret/{share_key}",
            "burn_path": f"private/{key}/burn",
            "metadata_path": f"private/{key}",
            "receipt_path": f"receipt/{key}",
            "share_url": share_url(base_url, receipt.share_domain, share_key),
            "metadata_url": f"{base_url}/private/{key}",
            "receipt_url": f"{base_url}/receipt/{key}",
            "burn_url": f"{base_url}/private/{key}/burn",
        }
    )
    if view.share_key:
        record["secret_key"] = view.share_key
        record["secret_identifier"] = view.share_key
    return record


def receipt_details(view: ReceiptView) -> Record:
    live = view.share_key is not None
    receipt = view.receipt
    return {
        "type": "record",
        "display_lines": _display_lines(view.value),
        "no_cache": True,
        "maxviews": 1 if live else None,
        "has_maxviews": False if live else None,
        "view_count": None,
        "has_passphrase": receipt.has_passphrase if live else None,
        "can_decrypt": (not receipt.has_passphrase) if live else None,
        "secret_value": view.value,
        "is_truncated": False if live else None,
        "show_secret": live,
        "show_secret_link": live,
        "show_metadata_link": live,
        "show_metadata": True,
        "show_recipients": bool(receipt.recipients),
    }


def secret_details(
    confirmed: bool, value: str | None, passphrase_ok: bool, is_owner: bool
) -> Record:
    return {
        "continue": confirmed,
        "is_owner": is_owner,
        "show_secret": value is not None,
        "correct_passphrase": passphrase_ok,
        "display_lines": _display_lines(value),
        "one_liner": None if value is None else "\n" not in value,
    }


def _flags(state: str, *, show_recipients: bool) -> Record:
    return {
        "show_recipients": show_recipients,
        "is_viewed": state == "viewed",
        "is_received": state == "received",
        "is_burned": state == "burned",
        "is_expired": state == "expired",
        "is_orphaned": state == "orphaned",
        "is_destroyed": state in DESTROYED,
    }


def _display_lines(value: str | None) -> int:
    text = value or ""
    return min(30, (80 + len(text)) // 80 + text.count("\n") + 3)
