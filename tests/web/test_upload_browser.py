"""The console in headless Chromium: upload by each path, pause and resume, survive a network drop.

Uploads are slowed with DevTools network emulation so that a pause or a drop lands mid-body;
the server's offsets are read with HEAD only while the browser is not sending.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Browser

from tests.support.live import LiveServer, StartLive
from tests.support.settings import ADMIN_TOKEN
from tests.support.waiting import wait_until, wait_until_steady
from tests.web.conftest import (
    Clips,
    Console,
    open_console,
    sha256,
    tus_offset,
    video,
)
from tests.web.link import Link

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("console-browser")]
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
DEVELOPMENT = "/api/v1/environments/development"


def still(read: Callable[[], int], seconds: float = 1.0) -> int:
    """Assert that `read()` keeps one value for `seconds` (a pause must hold), and return it.

    Showing that nothing moves needs a window of time; every read inside it is checked."""
    first = read()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert read() == first, "the paused upload moved"
        time.sleep(0.1)
    return first


def patch_offsets(console: Console) -> list[int]:
    return [int(h["upload-offset"]) for m, _, h in console.requests if m == "PATCH"]


def test_the_page_lets_the_flags_decide_and_with_the_template_flags_off_uses_the_old_path(
    console: Console,
) -> None:
    assert console.page.input_value("#path") == "flags"
    assert console.page.get_attribute("#flags", "data-path") == "legacy"
    # a fresh install has the video-rollout template: the flags exist, and are off
    line = console.text("#flags")
    assert "use_tus_upload: off (TARGETING_MATCH, control)" in line
    assert "code default" not in line and "FLAG_NOT_FOUND" not in line
    assert console.page.input_value("#stage") == "inbound"
    assert console.page.is_disabled("#pause") and console.page.is_disabled("#resume")


def test_tus_upload_pauses_resumes_and_plays_to_the_end(
    console: Console, server: LiveServer, clips: Clips, tmp_path: Path
) -> None:
    clip = clips("tiny")
    size = clip.stat().st_size
    console.choose("T-1", "work", "tus", clip)
    console.throttle_uploads(30_000)
    console.page.click("#start")
    console.wait("$('status').textContent.includes('Using TUS Protocol')")
    console.wait("Number($('progress').dataset.sent) > 25000")
    assert console.page.is_enabled("#pause")

    console.page.click("#pause")
    console.wait("$('status').textContent.startsWith('Paused')")
    assert console.page.is_enabled("#resume")
    assert console.upload_urls, "the page never created a tus upload"
    upload_url = console.upload_urls[-1]
    held = wait_until_steady(lambda: tus_offset(upload_url), message="the server's offset")
    assert 0 < held < size
    assert still(lambda: tus_offset(upload_url)) == held
    sent = console.sent()
    assert still(console.sent) == sent

    console.page.click("#resume")
    console.wait_state("ready")
    assert patch_offsets(console) == [0, held], "the resumed PATCH must start at the server offset"
    assert video(server, console.uid())["original_sha256"] == sha256(clip)

    console.wait("$('player').ended")
    assert console.page.evaluate("() => window.reelout.playerMode") == "hls.js"
    assert console.page.evaluate("() => window.reelout.hlsErrors.filter(e => e.fatal)") == []
    body = video(server, console.uid())
    assert console.page.get_attribute("#player", "poster") == body["thumbnail"]
    renditions = console.page.locator("#rendition option").all_text_contents()
    assert renditions[0] == "Auto"
    assert len(renditions) == 1 + len(body["renditions"])
    assert "[reelout] Using TUS Protocol" in console.logs
    assert not [line for line in console.logs if line.startswith("PAGE ERROR")]

    shot = tmp_path / "console.png"
    console.page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes().startswith(b"\x89PNG") and shot.stat().st_size > 10_000


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("direct", "Using direct binary upload"),
        ("legacy", "Using legacy base64 upload (deprecated)"),
    ],
)
def test_direct_and_legacy_uploads_reach_ready(
    console: Console, server: LiveServer, clips: Clips, path: str, message: str
) -> None:
    clip = clips("tiny")
    console.choose(f"P-{path}", "outbound", path, clip)
    console.page.click("#start")
    console.wait_state("ready")
    body = video(server, console.uid())
    assert body["source"] == path
    assert (body["order_id"], body["stage"]) == (f"P-{path}", "outbound")
    assert body["original_sha256"] == sha256(clip)
    assert f"[reelout] {message}" in console.logs
    assert not [m for m, url, _ in console.requests if url.endswith("/files/")], "tus was used"
    console.wait("$('recent').textContent.includes('ready')")


def test_a_processing_error_shows_its_code_and_text(console: Console, clips: Clips) -> None:
    console.choose("E-1", "work", "direct", clips("text"))
    console.page.click("#start")
    console.wait("$('video-state').dataset.state === 'error'", timeout=60_000)
    shown = console.text("#video-error")
    assert shown.startswith("ERR_NON_VIDEO: ") and len(shown) > len("ERR_NON_VIDEO: ")
    assert console.page.is_visible("#video-error")
    assert "Processing failed: ERR_NON_VIDEO" in console.text("#status")


def test_direct_upload_can_only_be_cancelled_and_leaves_nothing(
    console: Console, server: LiveServer, clips: Clips
) -> None:
    console.choose("C-1", "inbound", "direct", clips("no_audio"))
    console.throttle_uploads(40_000)
    console.page.click("#start")
    console.wait("Number($('progress').dataset.sent) > 40000")
    assert not console.page.is_enabled("#pause")
    assert not console.page.is_enabled("#resume")
    console.page.click("#cancel")
    console.wait("$('status').textContent === 'Upload cancelled'")

    def listed() -> list[Any]:
        with server.client() as api:
            videos: list[Any] = api.get("/api/v1/orders/C-1/inbound/videos").json()["videos"]
        return videos

    # the server notices the dropped body and throws away what it had
    wait_until(lambda: listed() == [], 10, "the cancelled upload to be thrown away")


@pytest.fixture
def link(server: LiveServer) -> Iterator[Link]:
    port = urlsplit(server.url).port
    assert port is not None
    through = Link(port)
    yield through
    through.close()


@pytest.fixture
def linked_console(browser: Browser, link: Link) -> Iterator[Console]:
    page = open_console(browser, link.url)
    yield page
    page.context.close()


def test_tus_resumes_by_itself_when_the_network_comes_back(
    linked_console: Console, server: LiveServer, link: Link, clips: Clips
) -> None:
    console, clip = linked_console, clips("no_audio")
    console.choose("N-1", "inbound", "tus", clip)
    cdp = console.throttle_uploads(60_000)
    console.page.click("#start")
    console.wait("Number($('progress').dataset.sent) > 60000")

    link.cut()  # the PATCH dies mid-body; then the browser learns it is offline
    assert link.reset_connections >= 1
    conditions = {"latency": 0, "downloadThroughput": -1, "uploadThroughput": -1}
    cdp.send("Network.emulateNetworkConditions", {"offline": True, **conditions})
    console.wait("$('status').textContent.includes('network is gone')")
    assert console.page.evaluate("() => navigator.onLine") is False

    link.restore()
    cdp.send("Network.emulateNetworkConditions", {"offline": False, **conditions})
    console.wait("$('status').textContent.startsWith('Uploaded')")
    offsets = patch_offsets(console)
    assert offsets[0] == 0 and offsets[-1] > 0, (
        f"the upload restarted instead of resuming: {offsets}"
    )
    assert any("Back online: resuming" in line for line in console.logs)
    assert video(server, console.uid())["original_sha256"] == sha256(clip)


def test_tus_retries_through_a_connection_reset(
    linked_console: Console, server: LiveServer, link: Link, clips: Clips
) -> None:
    console, clip = linked_console, clips("no_audio")
    console.choose("N-2", "inbound", "tus", clip)
    console.throttle_uploads(60_000)
    console.page.click("#start")
    console.wait("Number($('progress').dataset.sent) > 60000")
    heads_before = sum(1 for m, _, _ in console.requests if m == "HEAD")

    def retried() -> bool:
        console.page.wait_for_timeout(50)  # Playwright hands over the page's events meanwhile
        return sum(1 for m, _, _ in console.requests if m == "HEAD") != heads_before

    link.cut()
    assert link.reset_connections >= 1
    wait_until(retried, 15, "tus-js-client to retry")
    link.restore()  # a later retry gets through and resumes from the server's offset

    console.wait("$('status').textContent.startsWith('Uploaded')")
    offsets = patch_offsets(console)
    assert offsets[0] == 0 and offsets[-1] > 0, (
        f"the upload restarted instead of resuming: {offsets}"
    )
    assert not any("Upload stopped" in line for line in console.logs)
    assert video(server, console.uid())["original_sha256"] == sha256(clip)


def test_page_without_the_npm_libraries_says_so_and_still_uploads(
    browser: Browser, tmp_path: Path, clips: Clips, live_servers: StartLive
) -> None:
    no_vendor = {"console_vendor_dir": tmp_path / "no-vendor"}
    live = live_servers(state=no_vendor, embedded_worker=True, job_poll_seconds=0.2)
    console = open_console(browser, live.url)
    try:
        banner = console.text("#libs-missing")
        assert "tus-js-client" in banner and "hls.js" in banner and "make web" in banner
        assert console.page.is_disabled("#path option[value=tus]")
        assert console.page.input_value("#path") == "flags"
        tus_for_everyone = {"state": "ENABLED", "variants": {"on": True}, "defaultVariant": "on"}
        with httpx.Client(base_url=console.base_url, headers=ADMIN, timeout=10) as api:
            reply = api.put(f"{DEVELOPMENT}/flags/use_tus_upload", json=tus_for_everyone)
        assert reply.status_code == 200, reply.text
        console.page.fill("#order", "L-1")
        console.page.set_input_files("#file", str(clips("tiny")))
        console.page.click("#start")
        console.wait_state("ready")
        console.wait("$('player').ended")
        assert console.page.evaluate("() => window.reelout.playerMode") in ("native", "mp4")
        assert "[reelout] Using direct binary upload" in console.logs
        assert "tus-js-client is not installed" in console.text("#flags")
        assert not [line for line in console.logs if line.startswith("PAGE ERROR")]
    finally:
        console.context.close()
