"""The client's address: the TCP peer, or X-Forwarded-For when the peer is a trusted proxy."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address, ip_address

from aiohttp import web

from app.config import IPNetwork
from app.keys import SETTINGS


def client_address(request: web.Request) -> str:
    """Walk X-Forwarded-For from the right, past our own proxies, to the first stranger.

    Only entries appended by trusted proxies are believed: anything further left was
    written by the client and could be forged.
    """
    trusted = request.config_dict[SETTINGS].trusted_proxies
    peer = request.remote or "unknown"
    if not trusted:  # no proxies configured: the peer is the client, no need to parse it
        return peer
    if not _trusted(_plain_ip(peer), trusted):
        return peer
    hops = [h.strip() for h in ",".join(request.headers.getall("X-Forwarded-For", [])).split(",")]
    for hop in reversed([h for h in hops if h]):
        ip = _plain_ip(hop)
        if not _trusted(ip, trusted):
            return str(ip) if ip is not None else peer
    return peer


def _trusted(ip: IPv4Address | IPv6Address | None, networks: tuple[IPNetwork, ...]) -> bool:
    return ip is not None and any(ip in network for network in networks)


def _plain_ip(text: str) -> IPv4Address | IPv6Address | None:
    """The address `text` writes, or None if it is not a plain address.

    A scope ("fe80::1%eth0") is refused: Python takes any text after the "%", bytes that
    are not UTF-8 and 8 KB of it too, which reached the trail and the rate-limit bucket
    (a 500, or a bucket of its own per made-up scope). An IPv4 address mapped into IPv6
    is the IPv4 address, and str() writes each address one way, so "::ffff:192.0.2.1",
    "0:0::1" and their plain forms share a bucket and read alike in the trail.
    """
    try:
        ip = ip_address(text)
    except ValueError:
        return None
    if isinstance(ip, IPv6Address):
        if ip.scope_id is not None:
            return None
        return ip.ipv4_mapped or ip
    return ip
