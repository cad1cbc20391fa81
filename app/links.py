"""The links the service hands out: the API's records, the pages and the recipient's mail
must all build them the same way."""

from __future__ import annotations

from urllib.parse import urlsplit


def share_url(base_url: str, share_domain: str | None, share_key: str) -> str:
    """The share link lives on the sender's chosen domain, with this service's scheme."""
    base = f"{urlsplit(base_url).scheme}://{share_domain}" if share_domain else base_url
    return f"{base}/secret/{share_key}"
