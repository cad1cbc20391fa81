"""The caller as the request shows it, before any credentials are looked at."""

from __future__ import annotations

from aiohttp import web

from app.core.context import Caller
from app.http.clients import client_address
from app.http.requests import request_id


def anonymous_caller(request: web.Request) -> Caller:
    return Caller(
        client=client_address(request),
        user_agent=_text_of(request.headers.get("User-Agent")),
        request_id=request_id(request),
    )


def _text_of(header: str | None) -> str | None:
    """A header as text PostgreSQL can hold, for the audit row. aiohttp hands bytes that are
    not UTF-8 over as lone surrogates, which no UTF-8 encoder takes: one such User-Agent
    would fail its request, and every request batched with it (group commit), with a 500.
    Control characters go too: the trail is read in terminals and spreadsheets."""
    if header is None or (header.isascii() and header.isprintable()):
        return header  # nearly every request: nothing to clean, no copy made
    text = header.encode("utf-8", "replace").decode("utf-8")
    return "".join(c if c.isprintable() else "\ufffd" for c in text)
