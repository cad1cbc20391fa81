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
    nonce = _nonce(request)
    if nonce is not None:
        return nonce, False
    return secrets.token_hex(NONCE_BYTES), True


def token(key: bytes, nonce: str) -> str:
    return hmac.new(key, nonce.encode(), hashlib.sha256).hexdigest()


def valid(key: bytes, request: web.Request, submitted: str) -> bool:
    nonce = _nonce(request)
    # compare_digest refuses text that is not ASCII (a TypeError); a token never is.
    if nonce is None or not submitted.isascii():
        return False
    return hmac.compare_digest(token(key, nonce), submitted)


def _nonce(request: web.Request) -> str | None:
    """The cookie's nonce if it is one we could have set: anything else (bytes that are
    not UTF-8 among them, which no encoder takes back) is no nonce."""
    nonce = request.cookies.get(COOKIE, "")
    if len(nonce) == 2 * NONCE_BYTES and all(c in "0123456789abcdef" for c in nonce):
        return nonce
    return None


def set_cookie(response: web.StreamResponse, nonce: str, secure: bool) -> None:
    response.set_cookie(COOKIE, nonce, httponly=True, samesite="Strict", secure=secure, path="/")
