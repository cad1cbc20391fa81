"""CSRF protection for the page forms, without server-side sessions.

A random nonce lives in a SameSite=Strict, HttpOnly cookie; each form carries an HMAC of
it. A cross-site form post arrives without the cookie (SameSite) and cannot forge the
HMAC (it needs the server key), so both fail the check.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from aiohttp import web

COOKIE = "ots_csrf"
FIELD = "csrf"
NONCE_BYTES = 16


def cookie_nonce(request: web.Request) -> tuple[str, bool]:
    """The request's nonce, or a fresh one (True: the response must set the cookie)."""
    nonce = request.cookies.get(COOKIE, "")
    if len(nonce) == 2 * NONCE_BYTES and all(c in "0123456789abcdef" for c in nonce):
        return nonce, False
    return secrets.token_hex(NONCE_BYTES), True


def token(key: bytes, nonce: str) -> str:
    return hmac.new(key, nonce.encode(), hashlib.sha256).hexdigest()


def valid(key: bytes, request: web.Request, submitted: str) -> bool:
    nonce = request.cookies.get(COOKIE, "")
    return bool(nonce) and hmac.compare_digest(token(key, nonce), submitted)


def set_cookie(response: web.StreamResponse, nonce: str, secure: bool) -> None:
    response.set_cookie(COOKIE, nonce, httponly=True, samesite="Strict", secure=secure, path="/")
