"""Headers every API response carries: nothing cached, sniffed, framed or referred."""

from __future__ import annotations

from aiohttp import web

SECURITY_HEADERS = {
    # Responses hold secret values and capabilities: no cache, proxy or browser keeps them.
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
}


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
