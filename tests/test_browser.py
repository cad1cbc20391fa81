"""The whole journey in headless Chromium: create, open the link, reveal, gone, receipt;
passphrase; burn; a link preview; keyboard use; accessibility; no console errors."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import asyncpg
import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer
from playwright.async_api import Browser
from pytest_aiohttp import AiohttpServer

from app.config import Settings
from app.server import create_app
from tests.browser import Watched, launch
from tests.conftest import make_settings

BOT = "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)"


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async for launched in launch():
        yield launched


@pytest.fixture
async def site(
    db: asyncpg.Connection, aiohttp_server: AiohttpServer, settings: Settings
) -> TestServer:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    return await aiohttp_server(create_app(make_settings(settings, base_url=base)), port=port)


def url(site: TestServer, path: str = "/") -> str:
    return str(site.make_url(path))


async def create(page: Watched, site: TestServer, secret: str, passphrase: str = "") -> str:
    """Fill the create form; returns the share link shown on the result page."""
    await page.page.goto(url(site))
    await page.page.get_by_label("Secret", exact=True).fill(secret)
    if passphrase:
        await page.page.get_by_label("Passphrase (optional)").fill(passphrase)
    await page.page.get_by_role("button", name="Create a link").click()
    await page.page.wait_for_url("**/receipt/**")
    return await page.page.locator("#share-url").input_value()


async def assert_clean(page: Watched) -> None:
    assert await page.axe_violations() == []
    assert page.problems == []


async def test_the_whole_journey(browser: Browser, site: TestServer) -> None:
    sender = await Watched.open(browser, "journey-sender")
    share_url = await create(sender, site, "the launch code is 0000")
    receipt_url = await sender.page.locator("#receipt-url").input_value()
    await sender.shot("created")
    await assert_clean(sender)

    recipient = await Watched.open(browser, "journey-recipient")
    await recipient.page.goto(share_url)
    await recipient.shot("waiting")
    await assert_clean(recipient)
    await recipient.page.get_by_role("button", name="Reveal the secret").click()
    value = recipient.page.locator("#value")
    assert await value.input_value() == "the launch code is 0000"
    await recipient.shot("revealed")
    await assert_clean(recipient)

    response = await recipient.page.reload()
    assert response is not None
    assert response.status == 404
    recipient.expect_document_status(404)
    assert await recipient.page.get_by_role("heading", level=1).inner_text() == (
        "This secret is gone"
    )
    await recipient.shot("gone")
    await assert_clean(recipient)

    await sender.page.goto(receipt_url)
    assert await sender.page.locator("#state").get_attribute("data-state") == "received"
    await sender.shot("receipt-read")
    await assert_clean(sender)


async def test_passphrase_path(browser: Browser, site: TestServer) -> None:
    sender = await Watched.open(browser, "passphrase-sender")
    share_url = await create(sender, site, "behind a passphrase", passphrase="correct-horse-1")
    page = await Watched.open(browser, "passphrase-recipient")
    await page.page.goto(share_url)
    await page.page.get_by_label("Passphrase").fill("wrong-horse-1")
    await page.page.get_by_role("button", name="Reveal the secret").click()
    assert await page.page.get_by_role("alert").inner_text() == "That passphrase is not right."
    await page.shot("wrong")
    page.expect_document_status(422)
    await assert_clean(page)
    await page.page.get_by_label("Passphrase").fill("correct-horse-1")
    await page.page.get_by_role("button", name="Reveal the secret").click()
    assert await page.page.locator("#value").input_value() == "behind a passphrase"
    await assert_clean(page)


async def test_burn_from_the_receipt(browser: Browser, site: TestServer) -> None:
    sender = await Watched.open(browser, "burn")
    share_url = await create(sender, site, "burn after reading")
    await sender.page.get_by_label("Yes, destroy this secret now").check()
    await sender.page.get_by_role("button", name="Burn the secret").click()
    await sender.page.wait_for_load_state()
    assert await sender.page.locator("#state").get_attribute("data-state") == "burned"
    await sender.shot("burned")
    await assert_clean(sender)
    response = await sender.page.goto(share_url)
    assert response is not None
    assert response.status == 404
    sender.expect_document_status(404)
    assert sender.problems == []


async def test_a_link_preview_leaves_the_secret_revealable(
    browser: Browser, site: TestServer
) -> None:
    sender = await Watched.open(browser, "preview")
    share_url = await create(sender, site, "preview-proof")
    async with ClientSession() as session:
        for agent in (BOT, "facebookexternalhit/1.1", "Twitterbot/1.0"):
            async with session.get(share_url, headers={"User-Agent": agent}) as response:
                assert response.status == 200
    bot_browser = await Watched.open(browser, "preview-bot", user_agent=BOT)
    await bot_browser.page.goto(share_url)  # a bot that renders pages, scripts included
    recipient = await Watched.open(browser, "preview-recipient")
    await recipient.page.goto(share_url)
    await recipient.page.get_by_role("button", name="Reveal the secret").click()
    assert await recipient.page.locator("#value").input_value() == "preview-proof"


async def test_keyboard_only_and_copy_button(browser: Browser, site: TestServer) -> None:
    page = await Watched.open(
        browser, "keyboard", permissions=["clipboard-read", "clipboard-write"]
    )
    await page.page.goto(url(site))
    focus_order = []
    for _ in range(5):
        await page.page.keyboard.press("Tab")
        focus_order.append(
            await page.page.evaluate(
                "document.activeElement.id || document.activeElement.className"
            )
        )
    assert focus_order == ["skip", "brand", "secret", "ttl", "passphrase"]
    await page.page.keyboard.press("Shift+Tab")
    await page.page.keyboard.press("Shift+Tab")
    await page.page.keyboard.type("typed, not clicked")
    for _ in range(3):
        await page.page.keyboard.press("Tab")
    await page.page.keyboard.press("Enter")
    await page.page.wait_for_url("**/receipt/**")
    await page.page.get_by_role("button", name="Copy").first.click()
    await page.page.get_by_role("button", name="Copied").first.wait_for()
    copied = await page.page.evaluate("navigator.clipboard.readText()")
    assert copied == await page.page.locator("#share-url").input_value()
    assert page.problems == []


async def test_without_javascript_and_in_german(browser: Browser, site: TestServer) -> None:
    page = await Watched.open(browser, "no-js-de", java_script_enabled=False, locale="de-DE")
    await page.page.goto(url(site))
    assert await page.page.get_by_role("heading", level=1).inner_text() == "Ein Geheimnis teilen"
    await page.page.get_by_label("Geheimnis", exact=True).fill("ohne JavaScript")
    await page.page.get_by_role("button", name="Link erstellen").click()
    await page.page.wait_for_url("**/receipt/**")
    assert not await page.page.get_by_role("button", name="Kopieren").count()  # JS-only
    share_url = await page.page.locator("#share-url").input_value()
    await page.page.goto(share_url)
    await page.shot("waiting")
    await page.page.get_by_role("button", name="Geheimnis anzeigen").click()
    assert await page.page.locator("#value").input_value() == "ohne JavaScript"
    await page.shot("revealed")
    assert page.problems == []  # (axe needs scripts: it runs in the other tests)
