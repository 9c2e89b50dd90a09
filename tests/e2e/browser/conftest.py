"""A real browser for the end-to-end tests: Debian's Chromium (`make test` installs it through
scripts/system-deps.sh), driven by Playwright's Python package; never a browser Playwright downloads.

A missing Chromium fails the test that needs it, saying how to install it: a browser test never skips.
With STRANGLER_SCREENSHOTS=<folder> (`make screenshots`), the tests that show a page save it there under
the names docs/console.md uses; otherwise they save nothing.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, ConsoleMessage, Page, async_playwright

CHROMIUM = "/usr/bin/chromium"
STEP_MS = 10_000  # the bound on any one wait in the browser; never a threshold that is asserted


@dataclass
class Tab:
    """One page in its own browser context, and what the page said on its console."""

    page: Page
    context: BrowserContext
    browser: Browser
    errors: list[str] = field(default_factory=list)

    async def shoot(self, name: str) -> None:
        """Save the page as docs/img/<name> when screenshots are asked for (make screenshots)."""
        folder = os.environ.get("STRANGLER_SCREENSHOTS")
        if folder:
            await self.page.screenshot(path=str(Path(folder) / name), full_page=True)


@asynccontextmanager
async def browser_tab(viewport: tuple[int, int] = (1280, 900)) -> AsyncIterator[Tab]:
    """A headless Chromium tab; the CSP violations and script errors it reports are in `errors`."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (make system-deps does), "
                    "the browser tests never skip")  # fmt: skip
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        try:
            context = await browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
            context.set_default_timeout(STEP_MS)
            page = await context.new_page()
            tab = Tab(page, context, browser)

            def said(message: ConsoleMessage) -> None:
                if message.type == "error":
                    tab.errors.append(message.text)

            page.on("console", said)
            page.on("pageerror", lambda error: tab.errors.append(str(error)))
            yield tab
        finally:
            await browser.close()


async def until(page: Page, expression: str, timeout_s: float = STEP_MS / 1000) -> None:
    """Wait until `expression` is true in the page. Polled with evaluate(): wait_for_function would build a
    function from a string, which the pages' Content-Security-Policy rightly forbids."""
    give_up = time.monotonic() + timeout_s
    while not await page.evaluate(expression):
        if time.monotonic() > give_up:
            raise AssertionError(f"still false after {timeout_s} s: {expression}")
        await asyncio.sleep(0.05)
