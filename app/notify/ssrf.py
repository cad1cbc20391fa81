"""Where a webhook may go: http(s) only, and never to an address in the deny-list.

The check is made on the addresses the connection will use: the resolver below refuses
a name if any of its addresses is denied, and the connector connects to exactly what it
returned, so a name cannot resolve to a public address for the check and to a private
one for the connection (DNS rebinding). IP literals skip resolvers, so check_url checks
them itself. Redirects are never followed (webhook.py).
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from ipaddress import IPv4Address, IPv6Address, ip_address
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

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
    try:
        literal = ip_address(parts.hostname.split("%", maxsplit=1)[0])
    except ValueError:
        return url  # a name: the resolver checks what it resolves to
    if denied(str(literal), deny):
        raise Refused(f"webhook address {literal} is in a denied network")
    return url


class GuardedResolver(AbstractResolver):
    """aiohttp's resolver, refusing names with any denied address."""

    def __init__(self, deny: Sequence[IPNetwork], inner: AbstractResolver | None = None) -> None:
        self._deny = tuple(deny)
        self._inner = inner or DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        bad = [info["host"] for info in found if denied(info["host"], self._deny)]
        if bad:
            raise Refused(f"webhook host resolves to a denied address ({bad[0]})")
        return found

    async def close(self) -> None:
        await self._inner.close()
