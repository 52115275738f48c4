"""A real headless browser for the web console's tests: Debian's chromium driven by playwright.

``playwright install`` is never run (it downloads a browser build; there is no network for
it): playwright drives the system browser (``apt-get install chromium``) through
``executable_path``. Screenshots go under the test's tmp dir; their paths are printed.
"""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, Request, sync_playwright
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


#: What went wrong in the browser during the test, printed on a failure: each failed request
#: with chromium's reason (net::ERR_...), and each console warning or error of a page.
TROUBLE: list[str] = []


def new_context(b: Browser) -> BrowserContext:
    """The server's certificate chains to its own CA, which chromium does not know."""
    ctx = b.new_context(ignore_https_errors=True, viewport={"width": 1400, "height": 900})
    ctx.set_default_timeout(WAIT_MS)
    TROUBLE.clear()

    def failed(r: Request) -> None:
        TROUBLE.append(f"{_now()} request failed: {r.method} {r.url}: {r.failure}")

    def console(m: ConsoleMessage) -> None:
        if m.type in ("warning", "error"):
            TROUBLE.append(f"{_now()} console {m.type}: {m.text}")

    ctx.on("requestfailed", failed)
    ctx.on("console", console)
    return ctx


def _now() -> str:
    return time.strftime("%H:%M:%S", time.gmtime()) + f".{int(time.time() * 1000) % 1000:03d}"


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
        print("browser trouble (UTC):", *TROUBLE, sep="\n  ")
        raise


#: Navigation failures that are the network's, not the page's: chromium ends a navigation with
#: ERR_NETWORK_CHANGED when an interface appears or goes (Docker adds one per container), and
#: playwright reports a network error met after the request was sent as the navigation being
#: "interrupted by another navigation to chrome-error://chromewebdata/" (chromium's error page).
TRANSIENT = ("ERR_NETWORK_CHANGED", "chrome-error://chromewebdata/")


def goto(page: Page, url: str, attempts: int = 5) -> None:
    """``page.goto``, again (as a user would reload) when the navigation failed on the network
    (``TRANSIENT``); each such failure is printed with chromium's reason."""
    for left in range(attempts - 1, -1, -1):
        try:
            page.goto(url)
            return
        except PlaywrightError as e:
            if not any(t in str(e) for t in TRANSIENT) or not left:
                raise
            print(f"{_now()} navigation to {url} failed on the network, again:", str(e).splitlines()[0],
                  *TROUBLE[-3:], sep="\n  ")
            time.sleep(0.5)
