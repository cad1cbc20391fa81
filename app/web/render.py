"""Rendering a page: the template, the caller's language, the CSRF token, the headers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web

from app import crypto
from app.keys import SETTINGS
from app.web import csrf
from app.web.i18n import Translator, translator

# Pages load only their own stylesheet and script: no inline code, nothing external.
PAGE_CSP = (
    "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)


def language(request: web.Request) -> Translator:
    return translator(
        request.headers.get("Accept-Language", ""), request.config_dict[SETTINGS].locales
    )


def csrf_key(request: web.Request) -> bytes:
    return crypto.csrf_key(request.config_dict[SETTINGS].keys)


def render(request: web.Request, template: str, status: int = 200, **context: Any) -> web.Response:
    t = language(request)
    nonce, fresh = csrf.cookie_nonce(request)
    html = ENV.get_template(template).render(
        t=t, lang=t.locale, csrf=csrf.token(csrf_key(request), nonce), **context
    )
    response = web.Response(text=html, status=status, content_type="text/html")
    response.headers["Content-Security-Policy"] = PAGE_CSP
    response.headers["Vary"] = "Accept-Language"
    if fresh:
        secure = request.config_dict[SETTINGS].base_url.startswith("https://")
        csrf.set_cookie(response, nonce, secure)
    return response
