"""The recipient's mail as the outbox keeps it: address and share link, sealed."""

from __future__ import annotations

import json
from dataclasses import dataclass

from app import crypto


@dataclass(frozen=True)
class RecipientMail:
    address: str
    share_url: str  # the one capability a notification may carry, to its own recipient


def seal(ring: crypto.KeyRing, mail: RecipientMail) -> tuple[int, bytes]:
    """(key id, sealed payload) under the active master key."""
    key_id = ring.active_id
    text = json.dumps({"to": mail.address, "url": mail.share_url}).encode()
    return key_id, crypto.seal_for_notify(ring.master(key_id), text)


def unseal(ring: crypto.KeyRing, key_id: int, sealed: bytes) -> RecipientMail:
    fields = json.loads(crypto.open_for_notify(ring.master(key_id), sealed))
    return RecipientMail(address=fields["to"], share_url=fields["url"])
