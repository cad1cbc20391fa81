"""Real receivers for the notification tests: an SMTP server (aiosmtpd) and an HTTP
receiver (aiohttp), both on 127.0.0.1 in the test process; and the settings that point
the service at them with short, bounded waits."""

from __future__ import annotations

import asyncio
import base64
import email
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from email.message import Message
from typing import Any

from aiohttp import web
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from app.config import Notify, Settings, Smtp
from tests.processes import free_port

BOUND = 20.0  # seconds any single wait of these tests may take at most
STEP = 0.05
FAST = Notify(
    max_attempts=3,
    backoff_base=0.05,
    backoff_max=0.2,
    poll_interval=0.05,
    lease_seconds=5.0,
    webhook_timeout=3.0,
    webhook_deny=(),  # the receiver is on 127.0.0.1; tests/test_notify_ssrf.py uses the default
)


class _Handler:
    def __init__(self, inbox: Inbox) -> None:
        self.inbox = inbox

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.content
        raw = content if isinstance(content, bytes) else (content or "").encode()
        with self.inbox.lock:
            self.inbox.received.append((tuple(envelope.rcpt_tos), raw))
        return "250 OK"


@dataclass
class Inbox:
    """Every message the SMTP server accepted: (recipients, raw bytes)."""

    port: int = 0
    received: list[tuple[tuple[str, ...], bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def messages(self) -> list[tuple[tuple[str, ...], Message]]:
        with self.lock:
            return [(to, email.message_from_bytes(raw)) for to, raw in self.received]


@asynccontextmanager
async def smtp_server(**smtp: Any) -> AsyncIterator[Inbox]:
    """aiosmtpd on 127.0.0.1; `smtp` goes to its SMTP class (TLS, authentication)."""
    inbox = Inbox(port=free_port())
    controller = Controller(_Handler(inbox), hostname="127.0.0.1", port=inbox.port, **smtp)
    await asyncio.to_thread(controller.start)
    try:
        yield inbox
    finally:
        await asyncio.to_thread(controller.stop)


def parts(message: Message) -> dict[str, str]:
    """The text and HTML bodies of a message, decoded."""
    found = {}
    for part in message.walk():
        if part.get_content_maintype() == "text":
            data = part.get_payload(decode=True)
            assert isinstance(data, bytes)
            found[part.get_content_subtype()] = data.decode(part.get_content_charset() or "utf-8")
    return found


@dataclass
class Receiver:
    """An HTTP receiver: answers `fail_first` requests with 500, then 204; while `hang`
    is an unset event, requests wait for it; keeps every request's headers and body."""

    url: str = ""
    fail_first: int = 0
    hang: asyncio.Event | None = None
    delay: float = 0.0  # seconds each request takes
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    answered_ok: list[bytes] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests.append((dict(request.headers), body))
        if self.hang is not None:
            await self.hang.wait()
        await asyncio.sleep(self.delay)
        if request.transport is None or request.transport.is_closing():
            return web.Response(status=499)  # the sender is gone: it never learns of this
        if len(self.requests) <= self.fail_first:
            return web.Response(status=500, text="try later")
        self.answered_ok.append(body)
        return web.Response(status=204)


@asynccontextmanager
async def http_receiver(receiver: Receiver | None = None) -> AsyncIterator[Receiver]:
    receiver = receiver or Receiver()
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.5)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    receiver.url = f"http://127.0.0.1:{port}/hook"
    try:
        yield receiver
    finally:
        if receiver.hang is not None:
            receiver.hang.set()
        await runner.cleanup()


def notify_settings(settings: Settings, *, inbox: Inbox | None = None, **changes: Any) -> Settings:
    smtp = Smtp(host="127.0.0.1", port=inbox.port, starttls=False, timeout=3.0) if inbox else Smtp()
    return replace(settings, notify=replace(FAST, smtp=smtp, **changes))


async def wait_until(check: Callable[[], Awaitable[bool]], what: str, bound: float = BOUND) -> None:
    """Poll `check` until it holds; fail (never hang) after `bound` seconds."""
    async with asyncio.timeout(bound + 5):
        for _ in range(int(bound / STEP)):
            if await check():
                return
            await asyncio.sleep(STEP)
    raise AssertionError(f"not within {bound} s: {what}")


def basic_auth(custid: str, token: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{custid}:{token}".encode()).decode()}
