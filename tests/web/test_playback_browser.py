"""Playback in headless Chromium (hls-checks.md 9 and 11), the rendition selector, the MP4 fallback.

The landscape, portrait, rotated and no-audio clips go through the real pipeline once per
module; the console page then plays each one (`/console#watch=<uid>`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import m3u8
import pytest
from playwright.sync_api import Browser, Request, Route

from tests.support.live import LiveServer
from tests.support.waiting import wait_until
from tests.web.conftest import READY_TIMEOUT_MS, Clips, Console, open_console

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("console-browser")]
KINDS = ["landscape", "portrait", "rotated", "no_audio"]


@pytest.fixture(scope="module")
def videos(server: LiveServer, clips: Clips) -> dict[str, dict[str, Any]]:
    """Each kind uploaded (direct) and processed by the embedded worker: kind -> video."""
    uids = {}
    with server.client() as api:
        for kind in KINDS:
            path = clips(kind)
            reply = api.post(
                "/api/v1/orders/PB-1/work/videos",
                content=path.read_bytes(),
                headers={"Content-Type": "video/mp4", "X-Filename": path.name},
            )
            assert reply.status_code == 201, reply.text
            uids[kind] = reply.json()["uid"]
        return {kind: _ready(api, uid) for kind, uid in uids.items()}


def _ready(api: httpx.Client, uid: str) -> dict[str, Any]:
    def ready() -> dict[str, Any] | None:
        body: dict[str, Any] = api.get(f"/api/v1/videos/{uid}").json()
        assert body["status"]["state"] != "error", body["status"]
        return body if body["status"]["state"] == "ready" else None

    found = wait_until(ready, READY_TIMEOUT_MS / 1000, f"{uid} to be ready", interval=0.2)
    assert found is not None
    return found


@pytest.fixture(scope="module")
def console(browser: Browser, server: LiveServer) -> Iterator[Console]:
    page = open_console(browser, server.url)
    yield page
    page.context.close()


def watch(console: Console, uid: str) -> None:
    console.page.goto("about:blank")
    console.page.goto(f"{console.base_url}/console#watch={uid}")
    console.page.wait_for_function("() => document.body.dataset.ready === 'true'")


def variant_codecs(master_url: str) -> list[str]:
    master = m3u8.loads(httpx.get(master_url, timeout=10).text)
    return [playlist.stream_info.codecs for playlist in master.playlists]


@pytest.mark.parametrize("kind", KINDS)
def test_media_source_accepts_every_variant(
    console: Console, videos: dict[str, dict[str, Any]], kind: str
) -> None:
    """Check 9: Chromium's MediaSource.isTypeSupported accepts each variant's CODECS."""
    codecs = variant_codecs(videos[kind]["playback"]["hls"])
    assert len(codecs) == len(videos[kind]["renditions"]) >= 1
    if kind == "no_audio":
        assert not any("mp4a" in c for c in codecs)
    else:
        assert all("mp4a" in c for c in codecs)
    supported = console.page.evaluate(
        '(list) => list.map((c) => MediaSource.isTypeSupported(`video/mp4; codecs="${c}"`))',
        codecs,
    )
    assert supported == [True] * len(codecs), dict(zip(codecs, supported, strict=True))


@pytest.mark.parametrize("kind", KINDS)
def test_hls_js_plays_the_master_to_the_end(
    console: Console, videos: dict[str, dict[str, Any]], kind: str
) -> None:
    """Check 11: hls.js in headless Chromium plays the master to `ended` with no fatal error."""
    body = videos[kind]
    watch(console, body["uid"])
    console.wait("$('player').ended", timeout=30_000)
    page = console.page
    assert page.evaluate("() => window.reelout.playerMode") == "hls.js"
    errors = page.evaluate("() => window.reelout.hlsErrors")
    assert [e for e in errors if e["fatal"]] == []
    width, height = page.evaluate(
        "() => { const v = document.getElementById('player'); return [v.videoWidth, v.videoHeight]; }"
    )
    assert (width > height) == (kind in ("landscape", "no_audio"))
    assert (
        page.evaluate("() => document.getElementById('player').currentTime")
        >= body["duration"] - 0.25
    )


def test_the_player_starts_on_the_lowest_rung(
    console: Console, videos: dict[str, dict[str, Any]]
) -> None:
    """hls.js starts on the lowest rung (startLevel 0): the smallest first segment is the
    fastest start on every link (bench/qoe_lab.py); its ABR climbs from there."""
    body = videos["landscape"]
    assert len(body["renditions"]) > 1
    segments: list[str] = []

    def on_request(request: Request) -> None:
        if "/seg_" in request.url:
            segments.append(request.url)

    console.page.on("request", on_request)
    try:
        watch(console, body["uid"])
        console.wait("$('player').currentTime > 0")
    finally:
        console.page.remove_listener("request", on_request)
    lowest = min(body["renditions"], key=lambda r: r["height"])
    assert f"/{lowest['name']}/seg_00000.m4s" in segments[0], segments[:3]


def test_rendition_selector_switches_to_the_chosen_level(
    console: Console, videos: dict[str, dict[str, Any]]
) -> None:
    body = videos["landscape"]
    watch(console, body["uid"])
    console.wait("!$('rendition').disabled")
    labels = console.page.locator("#rendition option").all_text_contents()
    heights = sorted(r["height"] for r in body["renditions"])
    assert labels[0] == "Auto"
    assert sorted(int(label.split("p")[0]) for label in labels[1:]) == heights
    top = f"{heights[-1]}p"  # away from the lowest rung, where the player starts
    index = next(i for i, label in enumerate(labels[1:]) if label.startswith(top))
    console.page.select_option("#rendition", str(index))
    console.wait(f"$('player-mode').textContent.includes('{top} now')")
    assert console.page.evaluate("() => window.reelout.hls.currentLevel") == index
    assert "[reelout] Rendition: " + labels[index + 1] in console.logs


def test_falls_back_to_the_mp4_when_hls_js_fails(
    console: Console, videos: dict[str, dict[str, Any]]
) -> None:
    body = videos["portrait"]

    def broken(route: Route) -> None:
        route.fulfill(status=200, body="this is not a playlist", content_type="text/plain")

    console.page.route("**/master.m3u8", broken)
    try:
        watch(console, body["uid"])
        console.wait("$('player').ended", timeout=30_000)
    finally:
        console.page.unroute("**/master.m3u8", broken)
    page = console.page
    assert page.evaluate("() => window.reelout.playerMode") == "mp4"
    assert (
        page.evaluate("() => document.getElementById('player').currentSrc")
        == body["playback"]["mp4"]
    )
    fatal = [e for e in page.evaluate("() => window.reelout.hlsErrors") if e["fatal"]]
    assert fatal and fatal[0]["details"] == "manifestParsingError"
    assert "MP4 fallback (hls.js failed: manifestParsingError)" in console.text("#player-mode")
