"""Browser fixtures: Debian's Chromium driven by Playwright (no browser download), the whole
service in this process (served on a loopback port, as `serve` serves it), and the Segment
stand-in.

Every page a test opens is watched: a script error, a console error (a Content-Security-Policy
violation is one) or a request to another origin fails the test.

Screenshots for docs/console.md: `CONSOLE_SCREENSHOTS=docs/images .venv/bin/pytest tests/browser`
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    Request,
    sync_playwright,
)

from dodo_transform.testing import InProcessServer, SegmentStandIn, server_settings
from tests.integration.conftest import standin, workdir  # the same fixtures

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
TIMEOUT_MS = 15_000

pytestmark = pytest.mark.browser


# Module scope, not session: Playwright's sync API keeps an event loop running in this thread
# while it is started, and the tests that run after these call asyncio.run().
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail("no /usr/bin/chromium: .ci/run installs Debian's chromium package")
        pytest.skip("no /usr/bin/chromium (apt-get install chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def extra_settings() -> dict[str, str]:
    """Extra settings for the service; a test overrides them by parametrising."""
    return {}


@pytest.fixture
def server(
    workdir: Path, standin: SegmentStandIn, extra_settings: dict[str, str]
) -> Iterator[InProcessServer]:
    # Ready answers once the folder is loaded: every transform has a good version to keep.
    with InProcessServer(workdir, **server_settings(standin, **extra_settings)) as running:
        yield running


class Watched:
    """What went wrong in the browser while a test ran."""

    def __init__(self, origin: str) -> None:
        self.origin = origin
        self.problems: list[str] = []

    def watch(self, context: BrowserContext) -> None:
        context.on("request", self._request)
        context.on("page", self._page)

    def _page(self, page: Page) -> None:
        page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        page.on("console", self._console)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.problems.append(f"console error: {message.text}")

    def _request(self, request: Request) -> None:
        parts = urlsplit(request.url)
        web = parts.scheme in ("http", "https", "ws", "wss")
        if web and f"{parts.scheme}://{parts.netloc}" != self.origin:
            self.problems.append(f"off-origin request: {request.url}")


@pytest.fixture
def watched(server: InProcessServer) -> Watched:
    return Watched(server.url)


@pytest.fixture
def page(browser: Browser, server: InProcessServer, watched: Watched) -> Iterator[Page]:
    context = browser.new_context(base_url=server.url, viewport={"width": 1280, "height": 860})
    context.set_default_timeout(TIMEOUT_MS)
    watched.watch(context)
    opened = context.new_page()
    yield opened
    context.close()
    assert watched.problems == []


@pytest.fixture
def shoot() -> object:
    """`shoot(page, name)` saves a screenshot for the docs when CONSOLE_SCREENSHOTS names a
    folder; otherwise it does nothing."""
    folder = os.environ.get("CONSOLE_SCREENSHOTS")

    def take(page: Page, name: str) -> None:
        if folder:
            Path(folder).mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(Path(folder) / f"console-{name}.png"), full_page=False)

    return take


__all__ = ["standin", "workdir"]
