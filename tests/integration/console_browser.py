"""A real headless browser for the web console's tests: Debian's chromium driven by playwright.

``playwright install`` is never run (it downloads a browser build; there is no network for
it): playwright drives the system browser (``apt-get install chromium``) through
``executable_path``. Screenshots go under the test's tmp dir; their paths are printed.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright
from playwright.sync_api import Error as PlaywrightError

CHROMIUM = "/usr/bin/chromium"
#: How long a page may take to show what a test waits for (a real deploy takes seconds).
WAIT_MS = 120_000

needs_chromium = pytest.mark.skipif(shutil.which(CHROMIUM) is None, reason=f"no {CHROMIUM} (apt-get install chromium)")


@contextlib.contextmanager
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()


def new_context(b: Browser) -> BrowserContext:
    """The server's certificate chains to its own CA, which chromium does not know."""
    ctx = b.new_context(ignore_https_errors=True, viewport={"width": 1400, "height": 900})
    ctx.set_default_timeout(WAIT_MS)
    return ctx


def sign_in(ctx: BrowserContext, base_url: str, token: str) -> Page:
    page = ctx.new_page()
    page.on("dialog", lambda d: d.accept())  # hx-confirm asks before a release action
    goto(page, f"{base_url}/console/login")
    page.fill("#token", token)
    page.click("#sign-in")
    page.wait_for_url("**/console/clusters")
    return page


def shot(page: Page, tmp_path: Path, name: str) -> Path:
    path = tmp_path / "screenshots" / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")
    return path


def mark_loaded(page: Page) -> None:
    """A flag on the window: still there later means the page was never reloaded."""
    page.evaluate("window.__ccsNoReload = true")


def not_reloaded(page: Page) -> bool:
    return bool(page.evaluate("window.__ccsNoReload === true"))


@contextlib.contextmanager
def shots_on_failure(tmp_path: Path, pages: list[Page]) -> Iterator[None]:
    """On a failure, a screenshot of each page (the list as it is then) and its text."""
    try:
        yield
    except BaseException:
        for i, p in enumerate(pages):
            with contextlib.suppress(Exception):
                shot(p, tmp_path, f"failure-{i}")
                print(f"page {i} ({p.url}):\n{p.inner_text('body')}")
        raise


def goto(page: Page, url: str, attempts: int = 5) -> None:
    """``page.goto``, again when chromium aborts it with ERR_NETWORK_CHANGED: it does so when a
    network interface appears or goes (Docker adds a veth per container), whatever the address
    navigated to; the navigation itself was fine."""
    for left in range(attempts - 1, -1, -1):
        try:
            page.goto(url)
            return
        except PlaywrightError as e:
            if "ERR_NETWORK_CHANGED" not in str(e) or not left:
                raise
