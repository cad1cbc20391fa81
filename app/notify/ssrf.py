"""Where a webhook may go: http(s) only, and never to an address in the deny-list.

The check is made on the addresses the connection will use: the resolver (webhook.py) refuses
a name if any of its addresses is denied, and the connector connects to exactly what it
returned, so a name cannot resolve to a public address for the check and to a private
one for the connection (DNS rebinding). IP literals skip resolvers, so check_url checks
them itself. Redirects are never followed. No aiohttp here: the admin CLI checks URLs too.
"""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import IPv4Address, IPv6Address, ip_address
from urllib.parse import urlsplit

from app.config import IPNetwork

URL_CHARS = 2000


class Refused(Exception):
    """A destination this service will not call: permanent, retrying cannot help."""


def denied(address: str, deny: Sequence[IPNetwork]) -> bool:
    ip: IPv4Address | IPv6Address = ip_address(address.split("%", maxsplit=1)[0])
    if isinstance(ip, IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    return any(ip in net for net in deny)


def check_url(url: str, deny: Sequence[IPNetwork]) -> str:
    """The URL, if it is an acceptable webhook target as far as can be told without DNS."""
    if len(url) > URL_CHARS:
        raise Refused("webhook URL too long")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Refused("webhook URL must be http:// or https:// with a host")
    if parts.username is not None or parts.password is not None:
        raise Refused("webhook URL must not carry credentials")
    if not parts.hostname.isascii():
        # The HTTP client normalises such a host (IDNA, NFKC) before it connects: 127 in
        # fullwidth digits, or dots written as ideographic full stops, become the literal
        # 127.0.0.1, which no resolver sees. An international name must come as xn--.
        raise Refused("webhook URL host must be ASCII (an international name in xn-- form)")
    try:
        literal = ip_address(parts.hostname.split("%", maxsplit=1)[0])
    except ValueError:
        return url  # a name: the resolver checks what it resolves to
    if denied(str(literal), deny):
        raise Refused(f"webhook address {literal} is in a denied network")
    return url


def check_configured(url: str, deny: Sequence[IPNetwork]) -> str:
    """At configuration time, also refuse the names that always mean loopback (delivery
    needs no such rule: the resolver sees the address)."""
    host = urlsplit(check_url(url, deny)).hostname or ""
    if (host == "localhost" or host.endswith(".localhost")) and denied("127.0.0.1", deny):
        raise Refused("webhook URL must not point at localhost")
    return url
