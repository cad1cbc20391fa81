"""Webhook delivery: a JSON body, signed with the account's secret, POSTed once per try."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import time
from collections.abc import Sequence

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from app.config import IPNetwork
from app.notify.ssrf import Refused, check_url, denied
from app.store.outbox import Notification

USER_AGENT = "ots-webhook/1"


class HttpFailure(Exception):
    """The receiver answered, but not with a 2xx."""


def body(note: Notification) -> bytes:
    """What happened, to which receipt, when: no value, link key or passphrase."""
    return json.dumps(
        {
            "id": str(note.event_id),
            "type": note.event,
            "receipt_ref": note.receipt_ref.hex(),
            "shortid": note.secret_shortkey,
            "custid": note.custid,
            "occurred_at": int(note.occurred_at.timestamp()),
            "sent_at": int(time.time()),
            "attempt": note.attempts,
        },
        separators=(",", ":"),
    ).encode()


def signature(secret: bytes, timestamp: int, payload: bytes) -> str:
    """Stripe's scheme: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">."""
    mac = hmac.new(secret, f"{timestamp}.".encode() + payload, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(secret: bytes, header: str, payload: bytes, tolerance: int = 300) -> bool:
    """What a receiver does (README): recompute, compare in constant time, reject old."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    if not fields.get("t", "").isdigit() or abs(time.time() - int(fields["t"])) > tolerance:
        return False
    expected = signature(secret, int(fields["t"]), payload).rpartition("v1=")[2]
    return hmac.compare_digest(expected, fields.get("v1", ""))


def session(deny: Sequence[IPNetwork]) -> aiohttp.ClientSession:
    """One per process: the guarded resolver, no proxies from the environment, no cookies."""
    connector = aiohttp.TCPConnector(resolver=GuardedResolver(deny), limit=20)
    return aiohttp.ClientSession(
        connector=connector, cookie_jar=aiohttp.DummyCookieJar(), trust_env=False
    )


async def post(
    client: aiohttp.ClientSession,
    url: str,
    secret: bytes,
    note: Notification,
    deny: Sequence[IPNetwork],
    seconds: float,
) -> None:
    payload = body(note)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Event-Id": str(note.event_id),
        "X-Signature": signature(secret, int(time.time()), payload),
    }
    async with client.post(
        check_url(url, deny),
        data=payload,
        headers=headers,
        allow_redirects=False,
        timeout=aiohttp.ClientTimeout(total=seconds),
    ) as response:
        if not 200 <= response.status < 300:  # noqa: PLR2004  # the 2xx range
            raise HttpFailure(f"HTTP {response.status}")


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
