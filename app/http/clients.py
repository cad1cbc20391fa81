"""The client's address: the TCP peer, or X-Forwarded-For when the peer is a trusted proxy."""

from __future__ import annotations

from ipaddress import ip_address

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
    if not _trusted(peer, trusted):
        return peer
    hops = [h.strip() for h in ",".join(request.headers.getall("X-Forwarded-For", [])).split(",")]
    for hop in reversed([h for h in hops if h]):
        if not _trusted(hop, trusted):
            return hop if _is_ip(hop) else peer
    return peer


def _trusted(address: str, networks: tuple[IPNetwork, ...]) -> bool:
    if not networks:  # no proxies configured: the peer is the client, no need to parse it
        return False
    try:
        ip = ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def _is_ip(text: str) -> bool:
    try:
        ip_address(text)
    except ValueError:
        return False
    return True
