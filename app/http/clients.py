"""The client's address: the TCP peer, or X-Forwarded-For when the peer is a trusted proxy."""

from __future__ import annotations

from ipaddress import IPv6Address, ip_address

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
    peer = _address(peer) or peer
    if not _trusted(peer, trusted):
        return peer
    hops = [h.strip() for h in ",".join(request.headers.getall("X-Forwarded-For", [])).split(",")]
    for hop in reversed([h for h in hops if h]):
        if not _trusted(hop, trusted):
            return _address(hop) or peer
    return peer


def _trusted(address: str, networks: tuple[IPNetwork, ...]) -> bool:
    if not networks:  # no proxies configured: the peer is the client, no need to parse it
        return False
    plain = _address(address)
    return plain is not None and any(ip_address(plain) in network for network in networks)


def _address(text: str) -> str | None:
    """An address written one way, or None if `text` is not a plain address.

    A scope ("fe80::1%eth0") is refused: Python takes any text after the "%", bytes that
    are not UTF-8 and 8 KB of it too, which reached the trail and the rate-limit bucket
    (a 500, or a bucket of its own per made-up scope). One spelling per address, so
    "::ffff:192.0.2.1", "0:0::1" and their plain forms share a bucket and read alike in
    the trail.
    """
    try:
        ip = ip_address(text)
    except ValueError:
        return None
    if isinstance(ip, IPv6Address):
        if ip.scope_id is not None:
            return None
        return str(ip.ipv4_mapped or ip)
    return str(ip)
