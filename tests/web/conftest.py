"""Fixtures for the console tests: a live server that processes videos, Debian's Chromium, clips.

The browser is Debian's `chromium` driven by Playwright for Python through its executable path
(no `playwright install`); the browser tests are skipped, saying so, only when it is absent.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, CDPSession, Page, sync_playwright

from reelout.web.pages import LIBRARIES, VENDOR_DIR
from tests.media.clips import make_clip
from tests.support.live import LiveServer, live_server_fixture
from tests.support.settings import ADMIN_TOKEN

CHROMIUM = shutil.which("chromium")
BROWSER_ARGS = ["--autoplay-policy=no-user-gesture-required", "--mute-audio"]
READY_TIMEOUT_MS = 120_000  # processing shares 2 cores with the rest of the suite

Clips = Callable[[str], Path]


@pytest.fixture(scope="session")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Clips:
    """`clips(kind)` -> a small generated clip (tests/media/clips.py), made once per process."""
    folder = tmp_path_factory.mktemp("web-clips")
    return lambda kind: make_clip(kind, folder)


# a live server whose embedded worker processes uploads for real
server = live_server_fixture(
    scope="module", folder="console", embedded_worker=True, job_poll_seconds=0.2
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless Chromium per test module."""
    if CHROMIUM is None:
        pytest.skip(
            "Debian's chromium is not installed (apt-get install -y chromium; .ci/run does)"
        )
    missing = [lib.file for lib in LIBRARIES if not (VENDOR_DIR / lib.file).is_file()]
    if missing:
        problem = f"the console's npm libraries are not installed ({missing})"
        if os.environ.get("REELOUT_SKIP_NODE") == "1":
            pytest.skip(f"{problem} (REELOUT_SKIP_NODE=1)")
        pytest.fail(f"{problem}: run `make web` (or set REELOUT_SKIP_NODE=1 to skip)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        yield chromium
        chromium.close()


@dataclass
class Console:
    """A logged-in console page, with what the browser logged and which requests it sent."""

    page: Page
    context: BrowserContext
    base_url: str
    logs: list[str] = field(default_factory=list)
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    upload_urls: list[str] = field(default_factory=list)

    def text(self, selector: str) -> str:
        return self.page.text_content(selector) or ""

    def sent(self) -> int:
        return int(self.page.get_attribute("#progress", "data-sent") or 0)

    def wait(self, expression: str, timeout: float = 30_000) -> Any:
        """Wait until a JavaScript expression (with `$` = getElementById) is truthy."""
        script = f"() => {{ const $ = (id) => document.getElementById(id); return {expression}; }}"
        return self.page.wait_for_function(script, timeout=timeout)

    def wait_state(self, state: str, timeout: float = READY_TIMEOUT_MS) -> None:
        self.wait(f"['{state}', 'error'].includes($('video-state').dataset.state)", timeout)
        got = self.page.get_attribute("#video-state", "data-state")
        assert got == state, f"video is {got}: {self.text('#video-error')}"

    def choose(self, order: str, stage: str, path: str, file: Path) -> None:
        self.page.fill("#order", order)
        self.page.select_option("#stage", stage)
        self.page.select_option("#path", path)
        self.page.set_input_files("#file", str(file))

    def throttle_uploads(self, bytes_per_second: int) -> CDPSession:
        """Slow the browser's uploads (DevTools network emulation); returns the CDP session."""
        cdp = self.context.new_cdp_session(self.page)
        conditions = {
            "offline": False,
            "latency": 0,
            "downloadThroughput": -1,
            "uploadThroughput": bytes_per_second,
        }
        cdp.send("Network.emulateNetworkConditions", conditions)
        return cdp

    def uid(self) -> str:
        uid: str = self.page.evaluate("() => window.reelout.uid")
        return uid


def open_console(browser: Browser, base_url: str, key: str = ADMIN_TOKEN) -> Console:
    context = browser.new_context(viewport={"width": 1100, "height": 1000})
    page = context.new_page()
    console = Console(page, context, base_url)
    page.on("console", lambda message: console.logs.append(message.text))
    page.on("pageerror", lambda error: console.logs.append(f"PAGE ERROR: {error}"))

    def seen(request: Any) -> None:
        console.requests.append((request.method, request.url, request.headers))

    def answered(response: Any) -> None:
        if response.request.method == "POST" and response.url.endswith("/files/"):
            console.upload_urls.append(response.headers["location"])

    page.on("request", seen)
    page.on("response", answered)
    page.goto(base_url + "/console/login")
    page.fill("#key", key)
    page.click("#login")
    page.wait_for_url(base_url + "/console")
    page.wait_for_function("() => document.body.dataset.ready === 'true'")
    return console


@pytest.fixture
def console(browser: Browser, server: LiveServer) -> Iterator[Console]:
    page = open_console(browser, server.url)
    yield page
    page.context.close()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def video(server: LiveServer, uid: str) -> dict[str, Any]:
    with server.client() as api:
        reply = api.get(f"/api/v1/videos/{uid}")
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body


def tus_offset(url: str) -> int:
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}", "Tus-Resumable": "1.0.0"}
    reply = httpx.head(url, headers=headers, timeout=10)
    assert reply.status_code == 200, reply.text
    return int(reply.headers["upload-offset"])
