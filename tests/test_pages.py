"""The pages over HTTP (the browser journey is in tests/test_browser.py): forms, CSRF,
what a link-preview bot's GET does (nothing), languages, status codes and headers."""

from __future__ import annotations

import html
import re

import asyncpg
import pytest
from pytest_aiohttp import AiohttpClient

from app.config import Settings
from app.server import create_app
from tests.conftest import make_settings
from tests.factories import Client, conceal, raw_post

CSRF = re.compile(r'name="csrf" value="([0-9a-f]+)"')
BOTS = (
    "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
    "facebookexternalhit/1.1",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0)",
    "curl/8.5.0",
)


@pytest.fixture
async def browser_like(
    db: asyncpg.Connection, aiohttp_client: AiohttpClient, settings: Settings
) -> Client:
    """Served on plain http, as the test server is, so the CSRF cookie is not Secure."""
    return await aiohttp_client(create_app(make_settings(settings, base_url="http://127.0.0.1")))


async def _csrf(client: Client, path: str) -> str:
    response = await client.get(path)
    found = CSRF.search(await response.text())
    assert found is not None
    return found.group(1)


async def _create(client: Client, **form: str) -> str:
    token = await _csrf(client, "/")
    response = await client.post("/", data={"csrf": token, **form}, allow_redirects=False)
    assert response.status == 303, await response.text()
    location = response.headers["Location"]
    assert re.fullmatch(r"/receipt/[0-9a-z]+\?created=1", location)
    return location


async def test_create_page_headers_and_cookie(browser_like: Client) -> None:
    response = await browser_like.get("/")
    assert response.status == 200
    assert response.content_type == "text/html"
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    cookie = response.cookies["ots_csrf"]
    assert cookie["httponly"]
    assert cookie["samesite"] == "Strict"


async def test_forms_without_a_valid_token_are_refused(
    browser_like: Client, db: asyncpg.Connection
) -> None:
    await browser_like.get("/")
    for token in ("", "0" * 64):
        response = await browser_like.post("/", data={"csrf": token, "secret": "x"})
        assert response.status == 403
    assert await db.fetchval("SELECT count(*) FROM receipts") == 0


async def test_a_token_or_cookie_no_form_could_hold_is_refused_not_a_500(
    browser_like: Client, db: asyncpg.Connection
) -> None:
    """compare_digest raises on text that is not ASCII, and a cookie of bytes that are not
    UTF-8 comes as lone surrogates no encoder takes: both were 500s (found by
    tests/reliability/test_header_fuzz.py)."""
    await browser_like.get("/")
    response = await browser_like.post("/", data={"csrf": "é" * 64, "secret": "x"})
    assert response.status == 403
    answer = await raw_post(
        browser_like,
        "/",
        b"Cookie: ots_csrf=\x80\xff\r\nContent-Type: application/x-www-form-urlencoded\r\n",
        b"secret=x&csrf=00",
    )
    assert answer.startswith(b"HTTP/1.1 403"), answer[:200]
    assert await db.fetchval("SELECT count(*) FROM receipts") == 0


async def test_create_then_reveal_once(browser_like: Client) -> None:
    receipt = await browser_like.get(await _create(browser_like, secret="page secret", ttl="3600"))
    html = await receipt.text()
    share = re.search(r'id="share-url" type="text" readonly value="([^"]+)"', html)
    assert share is not None
    path = share.group(1).removeprefix("http://127.0.0.1")
    token = await _csrf(browser_like, path)
    revealed = await browser_like.post(path, data={"csrf": token})
    assert revealed.status == 200
    assert "page secret" in await revealed.text()
    gone = await browser_like.get(path)
    assert gone.status == 404
    again = await browser_like.post(path, data={"csrf": token})
    assert again.status == 404


async def test_bots_fetching_the_link_consume_nothing(browser_like: Client) -> None:
    pair = await conceal(browser_like, "still here")
    for agent in BOTS:
        for method in ("GET", "HEAD"):
            response = await browser_like.request(
                method, f"/secret/{pair.secret_key}", headers={"User-Agent": agent}
            )
            assert response.status == 200
    token = await _csrf(browser_like, f"/secret/{pair.secret_key}")
    response = await browser_like.post(f"/secret/{pair.secret_key}", data={"csrf": token})
    assert "still here" in await response.text()


async def test_passphrase_on_the_page(browser_like: Client) -> None:
    pair = await conceal(browser_like, "guarded", passphrase="correct-horse-1")
    path = f"/secret/{pair.secret_key}"
    token = await _csrf(browser_like, path)
    wrong = await browser_like.post(path, data={"csrf": token, "passphrase": "nope-nope-1"})
    assert wrong.status == 422
    assert 'aria-invalid="true"' in await wrong.text()
    right = await browser_like.post(path, data={"csrf": token, "passphrase": "correct-horse-1"})
    assert "guarded" in await right.text()


async def test_burn_needs_confirmation(browser_like: Client) -> None:
    receipt_path = (await _create(browser_like, secret="burn me")).split("?")[0]
    token = await _csrf(browser_like, receipt_path)
    unconfirmed = await browser_like.post(f"{receipt_path}/burn", data={"csrf": token})
    assert unconfirmed.status == 422
    confirmed = await browser_like.post(
        f"{receipt_path}/burn", data={"csrf": token, "confirm": "yes"}, allow_redirects=False
    )
    assert (confirmed.status, confirmed.headers["Location"]) == (303, receipt_path)
    page = await (await browser_like.get(receipt_path)).text()
    assert 'data-state="burned"' in page


async def test_generated_password_is_shown_once(browser_like: Client) -> None:
    location = await _create(browser_like, kind="generate", ttl="300")
    first = await (await browser_like.get(location)).text()
    value = re.search(r'id="generated" type="text" readonly value="([^"]+)"', first)
    assert value is not None
    assert len(html.unescape(value.group(1))) == 12  # symbols arrive HTML-escaped
    second = await (await browser_like.get(location)).text()
    assert 'id="generated"' not in second


async def test_language_follows_accept_language(browser_like: Client) -> None:
    german = await browser_like.get("/", headers={"Accept-Language": "de-DE,de;q=0.9,en;q=0.5"})
    html = await german.text()
    assert '<html lang="de">' in html
    assert "Ein Geheimnis teilen" in html
    english = await browser_like.get("/", headers={"Accept-Language": "fr, en;q=0.8"})
    assert '<html lang="en">' in await english.text()
    locales = await (await browser_like.get("/api/v2/supported-locales")).json()
    assert locales["locales"] == ["en", "de"]


async def test_unknown_pages_are_html_404(browser_like: Client) -> None:
    for path in ("/nope", "/secret/not-a-key!", "/receipt/unknownkey123"):
        response = await browser_like.get(path)
        assert response.status == 404
        assert response.content_type == "text/html"
