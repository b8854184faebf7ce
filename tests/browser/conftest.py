"""What every browser test shares: Debian's Chromium driven by Playwright, and optional screenshots.

Playwright's own browser downloads are never used; without /usr/bin/chromium the tests skip with the
command that installs it.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parent.parent.parent / "docs" / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="Debian's Chromium is not installed at /usr/bin/chromium (apt-get install chromium); "
    "Refinery never downloads Playwright's own browsers",
)


@pytest.fixture
def browser_page(live_server):
    """A Chromium page at laptop size; 30 s default timeout."""
    # Playwright's sync API runs an event loop in this thread; Django's ORM refuses to run in a thread
    # with an event loop unless told it is safe, and the tests still read the database directly.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.set_default_timeout(30_000)
        try:
            yield page
        finally:
            context.close()
            browser.close()
            if previous is None:
                os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
            else:
                os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


def screenshot(page, name: str) -> None:  # type: ignore[no-untyped-def]
    """With REFINERY_SCREENSHOTS=1, save the page as docs/screenshots/<name>.png (the README's pictures)."""
    if os.environ.get("REFINERY_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
