"""A real Chromium for the page tests: Debian's `chromium`, driven by Playwright, with
axe-core (from npm) to check accessibility. Missing pieces skip the tests with the reason,
except when OTS_REQUIRE_BROWSER=1 (CI), where they fail."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, ConsoleMessage, Error, Page, async_playwright

ROOT = Path(__file__).resolve().parent.parent
AXE = Path(os.environ.get("OTS_AXE_JS", ROOT / ".cache/axe/node_modules/axe-core/axe.min.js"))
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
]


def chromium_path() -> str:
    path = os.environ.get("OTS_CHROMIUM") or shutil.which("chromium")
    found = path is not None and Path(path).exists()
    missing = None if found else "chromium is not installed (apt-get install chromium)"
    if missing is None and not AXE.exists():
        missing = f"axe-core is not installed at {AXE} (npm install --prefix .cache/axe axe-core@4)"
    if missing:
        if os.environ.get("OTS_REQUIRE_BROWSER") == "1":
            pytest.fail(missing)
        pytest.skip(missing)
    assert path is not None
    return path


async def launch() -> AsyncIterator[Browser]:
    executable = chromium_path()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            await browser.close()


@dataclass
class Watched:
    """A page whose console errors and uncaught exceptions are collected."""

    page: Page
    name: str
    problems: list[str] = field(default_factory=list)

    @classmethod
    async def open(cls, browser: Browser, name: str, **context: Any) -> Watched:
        page = await (await browser.new_context(**context)).new_page()
        page.set_default_timeout(10_000)  # every wait bounded, well under pytest's patience
        watched = cls(page, name)
        page.on("console", watched._console)
        page.on("pageerror", watched._error)
        return watched

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.problems.append(f"console: {message.text}")

    def _error(self, error: Error) -> None:
        self.problems.append(f"page error: {error}")

    def expect_document_status(self, status: int) -> None:
        """Chromium logs a page served with an error status as a console error: take back
        exactly that one, so anything else (a missing asset, say) still fails."""
        expected = (
            f"console: Failed to load resource: the server responded with a status of {status}"
        )
        matching = [p for p in self.problems if p.startswith(expected)]
        assert matching, f"no {status} was logged"
        self.problems.remove(matching[0])

    async def shot(self, step: str) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        safe = re.sub(r"[^a-z0-9_-]+", "-", f"{self.name}-{step}".lower())
        await self.page.screenshot(path=str(SCREENSHOTS / f"{safe}.png"), full_page=True)

    async def axe_violations(self) -> list[str]:
        """WCAG 2 A and AA rules. Injected through the DevTools protocol, which the page's
        CSP does not govern, so the page needs no exception for it."""
        await self.page.evaluate(await asyncio.to_thread(AXE.read_text))
        result = await self.page.evaluate(
            "async () => (await axe.run(document, {runOnly: ['wcag2a', 'wcag2aa', "
            "'wcag21a', 'wcag21aa', 'best-practice']})).violations"
            ".map(v => v.id + ': ' + v.help + ' (' + v.nodes.length + ')')"
        )
        return list(result)
