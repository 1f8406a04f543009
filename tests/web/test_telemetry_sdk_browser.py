"""The browser telemetry SDK (/sdk/telemetry.js) in Chromium, as an app on another origin uses
it: imported across origins, a client key, batches, a beacon on page hide, retries through a
server that fails or refuses, the bounded queue, the tus-js-client helper and the hls.js adapter.

The app's page is served by a second server (another origin); it loads hls.js and
tus-js-client from Reelout's console copies and imports the SDK from Reelout itself.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Request, Route
from playwright.sync_api import Error as PlaywrightError
from starlette.applications import Starlette
from starlette.requests import Request as StarletteRequest
from starlette.responses import HTMLResponse
from starlette.routing import Route as StarletteRoute

from reelout.telemetry import events as model
from tests.media.clips import AAC, X264, ffmpeg, picture, tone
from tests.support.flaky import FlakyProxy
from tests.support.live import LiveServer, StartLive, running
from tests.support.telemetry import (
    has_types,
    one_sequence,
    stored_events,
    types_of,
    wait_for_events,
)
from tests.support.waiting import wait_until
from tests.telemetry.conftest import client_key
from tests.web.conftest import READY_TIMEOUT_MS

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("console-browser")]
EVENTS = "/api/v1/telemetry/events"
NEVER_MS = 600_000  # a flush interval no test waits for: only a flush, a full batch or a hide send

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>An app</title>
<script src="{reelout}/console/static/vendor/hls.min.js"></script>
<script src="{reelout}/console/static/vendor/tus.min.js"></script>
</head><body>
<video id="video" muted playsinline></video>
<script type="module">
  import * as sdk from "{reelout}/sdk/telemetry.js";
  window.sdk = sdk;
  window.problems = [];
  document.body.dataset.ready = "true";
</script>
</body></html>"""


@pytest.fixture(scope="module")
def key(server: LiveServer) -> str:
    return client_key(server)


@pytest.fixture(scope="module")
def app_origin(server: LiveServer) -> Iterator[str]:
    """An app's page on an origin of its own that imports the SDK from Reelout."""

    def page(_: StarletteRequest) -> HTMLResponse:
        return HTMLResponse(PAGE.format(reelout=server.url))

    with running(Starlette(routes=[StarletteRoute("/", page)])) as url:
        yield url


@dataclass
class AppPage:
    """The app's page in a fresh browser context, with the requests it sent."""

    page: Page
    context: BrowserContext
    requests: list[Request] = field(default_factory=list)

    def start(self, **options: Any) -> None:
        """`window.tel = sdk.createTelemetry(options)`, its problems collected in `problems`."""
        self.page.evaluate(
            "(o) => { window.tel = sdk.createTelemetry({ ...o, onError: (e) => problems.push(e.message) }); }",
            options,
        )

    def track(self, *events: tuple[str, dict[str, Any]]) -> list[str]:
        ids: list[str] = self.page.evaluate(
            "(events) => events.map(([type, fields]) => tel.track(type, fields))", list(events)
        )
        return ids

    def stats(self) -> dict[str, int]:
        stats: dict[str, int] = self.page.evaluate("() => tel.stats()")
        return stats


@pytest.fixture
def app(browser: Browser, app_origin: str) -> Iterator[AppPage]:
    context = browser.new_context()
    page = context.new_page()
    opened = AppPage(page, context)
    page.on("request", lambda request: opened.requests.append(request))
    page.goto(app_origin)
    page.wait_for_function("() => document.body.dataset.ready === 'true'")
    yield opened
    context.close()


def options(server_url: str, key: str, viewer: str, **more: Any) -> dict[str, Any]:
    return {
        "endpoint": server_url,
        "clientKey": key,
        "viewerId": viewer,
        "appVersion": "7.1.0",
        "flags": {"use_tus_upload": "on"},
        "flushIntervalMs": NEVER_MS,
        **more,
    }


def status(request: Request) -> int:
    reply = request.response()
    assert reply is not None, request.url
    return reply.status


def feedback(n: int) -> list[tuple[str, dict[str, Any]]]:
    return [("rating", {"score": 1 + i % 5}) for i in range(n)]


def test_the_module_imported_from_another_origin_reports_with_a_client_key(
    app: AppPage, server: LiveServer, key: str
) -> None:
    (sdk,) = [r for r in app.requests if r.url == f"{server.url}/sdk/telemetry.js"]
    reply = sdk.response()
    assert reply is not None and reply.status == 200
    assert reply.headers["access-control-allow-origin"] == "*"
    assert reply.headers["content-type"].startswith("text/javascript")

    app.start(**options(server.url, key, "viewer-cross-origin"))
    ids = app.track(
        ("rating", {"score": 5}),
        ("complaint", {"kind": "audio"}),
        ("app_session", {"status": "ok"}),
    )
    stats = app.page.evaluate("async () => { await tel.flush(); return tel.stats(); }")
    assert stats["accepted"] == 3 and stats["queued"] == 0 and stats["rejected"] == 0

    stored = stored_events(server, viewer_id="viewer-cross-origin")
    assert [event["event_id"] for event in stored] == ids
    session = stored[0]["session_id"]
    for event in stored:
        model.parse(event)
        assert event["environment"] == "production" and event["source"] == "client"
        assert event["flags"] == {"use_tus_upload": "on"}
        assert (event["platform"], event["app_version"]) == ("web", "7.1.0")
        assert event["session_id"] == session and event["schema_version"] == 1
    assert app.page.evaluate("() => problems") == []


@pytest.fixture
def proxy(server: LiveServer) -> Iterator[tuple[FlakyProxy, str]]:
    flaky = FlakyProxy(server.url)
    with running(flaky) as url:
        yield flaky, url


def test_what_is_queued_goes_out_in_a_beacon_when_the_page_is_left(
    app: AppPage, server: LiveServer, key: str, proxy: tuple[FlakyProxy, str]
) -> None:
    flaky, url = proxy  # forwards all, and shows what the server got
    app.start(**options(url, key, "viewer-beacon"))
    ids = app.track(*feedback(3))
    assert app.stats()["queued"] == 3
    assert stored_events(server, viewer_id="viewer-beacon") == []  # nothing sent yet

    app.page.goto("about:blank")  # pagehide: the SDK's last chance
    stored = wait_for_events(
        server, lambda found: len(found) == 3, viewer_id="viewer-beacon", message="the beacon"
    )
    assert sorted(event["event_id"] for event in stored) == sorted(ids)
    (beacon,) = wait_until(lambda: flaky.requests("POST", EVENTS), message="the proxy's answer")
    assert beacon.query == f"key={key}"  # a beacon sets no headers: the key rides in the query
    assert beacon.headers["content-type"].startswith("text/plain")
    assert "authorization" not in beacon.headers
    assert beacon.status == 200


def test_a_server_answering_500_gets_the_batch_again_once_it_recovers(
    app: AppPage, server: LiveServer, key: str, proxy: tuple[FlakyProxy, str]
) -> None:
    flaky, url = proxy
    flaky.fail("POST", EVENTS, 3)
    app.start(**options(url, key, "viewer-500", retryBaseMs=200, retryMaxMs=1000, batchSize=4))
    ids = app.track(*feedback(4))  # a full batch goes at once
    stored = wait_for_events(
        server, lambda found: len(found) == 4, viewer_id="viewer-500", message="the retries"
    )
    assert sorted(event["event_id"] for event in stored) == sorted(ids)
    assert flaky.statuses("POST", EVENTS) == [500, 500, 500, 200]
    # the server stores the batch before the page has read the answer: wait for the page
    stats = wait_until(lambda: (s := app.stats())["queued"] == 0 and s, 10, "the page to count")
    assert (stats["retries"], stats["accepted"], stats["queued"]) == (3, 4, 0)
    assert app.page.evaluate("() => problems") == [
        "the ingest answered HTTP 500; retrying"
    ]  # told once, not per retry


def test_the_queue_keeps_the_newest_events_while_the_server_is_down(
    app: AppPage, server: LiveServer, key: str, proxy: tuple[FlakyProxy, str]
) -> None:
    flaky, url = proxy
    flaky.fail("POST", EVENTS, 10**6)
    app.start(**options(url, key, "viewer-down", maxQueue=3, retryBaseMs=200, retryMaxMs=400))
    ids = app.track(*feedback(5))
    stats = app.stats()
    assert (stats["queued"], stats["dropped"]) == (3, 2)  # the oldest two went
    app.page.evaluate("() => tel.flush()")
    wait_until(lambda: flaky.statuses("POST", EVENTS), message="a failed send")
    flaky.recover()
    stored = wait_for_events(
        server, lambda found: len(found) == 3, viewer_id="viewer-down", message="the newest three"
    )
    assert sorted(event["event_id"] for event in stored) == sorted(ids[2:])
    assert app.stats()["dropped"] == 2


def test_a_429_is_waited_out_for_as_long_as_retry_after_says(
    app: AppPage, live_servers: StartLive
) -> None:
    limited = live_servers("limited", rate_limit_key_per_second=1, rate_limit_key_burst=1)
    key = client_key(limited)
    app.start(**options(limited.url, key, "viewer-429", batchSize=1, retryBaseMs=50))
    ids = app.track(*feedback(3))
    stored = wait_for_events(
        limited, lambda found: len(found) == 3, viewer_id="viewer-429", message="three batches"
    )
    assert sorted(event["event_id"] for event in stored) == sorted(ids)
    retries = app.stats()["retries"]  # (a call into the page: its request events are in)
    refused = [r for r in app.requests if EVENTS in r.url and status(r) == 429]
    assert refused, "the key's rate limit never refused a batch"
    for request in refused:
        reply = request.response()
        assert reply is not None and int(reply.headers["retry-after"]) >= 1
    assert retries == len(refused)


def test_a_batch_the_server_finds_too_large_is_split(app: AppPage, live_servers: StartLive) -> None:
    small = live_servers("small", telemetry_max_batch_events=2)
    key = client_key(small)
    app.start(**options(small.url, key, "viewer-413"))
    ids = app.track(*feedback(5))
    app.page.evaluate("async () => { while (tel.stats().queued) await tel.flush(); }")
    stored = stored_events(small, viewer_id="viewer-413")
    assert sorted(event["event_id"] for event in stored) == sorted(ids)
    statuses = [status(r) for r in app.requests if EVENTS in r.url]
    assert statuses[0] == 413 and set(statuses[1:]) == {200}


# ---- uploads with tus-js-client ------------------------------------------------------------

TUS_UPLOAD = """async ({ endpoint, token, bytes, uid }) => {
  const file = new File([Uint8Array.from(atob(bytes), (c) => c.charCodeAt(0))], "clip.mp4", { type: "video/mp4" });
  const own = { progress: 0, retries: 0 };
  const tracker = tel.uploads.tus(file, {
    endpoint, headers: { Authorization: `Bearer ${token}` }, retryDelays: [0, 200],
    metadata: { filename: "clip.mp4" }, storeFingerprintForResuming: false,
    onProgress: () => { own.progress += 1; },
    onShouldRetry: () => { own.retries += 1; return true; },
  }, { videoId: uid });
  const outcome = await new Promise((resolve) => {
    tracker.options.onSuccess = ((done) => (p) => { done(p); resolve("success"); })(tracker.options.onSuccess);
    tracker.options.onError = ((failed) => (e) => { try { failed(e); } catch (_) {} resolve("error"); })(tracker.options.onError);
    new tus.Upload(file, tracker.options).start();
  });
  await tel.flush();
  return { outcome, id: tracker.id, attempts: tracker.attempts, own };
}"""


def tus_link(server: LiveServer, order: str) -> dict[str, Any]:
    with server.client() as api:
        reply = api.post(f"/api/v1/orders/{order}/work/videos", json={"upload": "tus"})
    assert reply.status_code == 201, reply.text
    link: dict[str, Any] = reply.json()
    return link


def test_a_tus_upload_retried_after_a_500_reports_its_attempts(
    app: AppPage,
    server: LiveServer,
    key: str,
    proxy: tuple[FlakyProxy, str],
    clips: Any,
) -> None:
    flaky, url = proxy
    clip: Path = clips("tiny")
    link = tus_link(server, "SDK-TUS")
    flaky.fail("PATCH", "/files/", 1)
    app.start(**options(server.url, key, "viewer-tus"))
    done = app.page.evaluate(
        TUS_UPLOAD,
        {
            "endpoint": link["upload"]["url"].replace(server.url, url),
            "token": link["upload"]["token"],
            "bytes": base64.b64encode(clip.read_bytes()).decode(),
            "uid": link["uid"],
        },
    )
    assert done["outcome"] == "success" and done["own"]["retries"] == 1  # the page's own hook ran
    assert done["own"]["progress"] >= 1
    events = one_sequence(stored_events(server, upload_id=done["id"]), "upload_id")
    types = types_of(events)
    assert types[0] == "upload_started" and types[-1] == "upload_completed"
    assert set(types[1:-1]) == {"upload_progress"}
    completed = events[-1]
    assert completed["method"] == "tus" and completed["attempts"] == 2 == done["attempts"]
    assert completed["bytes"] == clip.stat().st_size == events[0]["bytes"]
    assert {event["video_id"] for event in events} == {link["uid"]}
    assert flaky.statuses("PATCH", "/files/")[0] == 500
    with server.client() as api:  # the uploader, for the server's own record of the upload
        meta = api.get(f"/api/v1/videos/{link['uid']}").json()["meta"]
    assert meta == {"filename": "clip.mp4", "viewer_id": "viewer-tus"}


def test_a_tus_upload_refused_reports_the_failure(
    app: AppPage, server: LiveServer, key: str, clips: Any
) -> None:
    link = tus_link(server, "SDK-TUS-401")
    app.start(**options(server.url, key, "viewer-tus-401"))
    done = app.page.evaluate(
        TUS_UPLOAD.replace("onShouldRetry: () => { own.retries += 1; return true; },", ""),
        {
            "endpoint": link["upload"]["url"],
            "token": "rlo_upload_not-a-token",
            "bytes": base64.b64encode(clips("tiny").read_bytes()).decode(),
            "uid": link["uid"],
        },
    )
    assert done["outcome"] == "error"
    events = one_sequence(stored_events(server, upload_id=done["id"]), "upload_id")
    assert types_of(events) == ["upload_started", "upload_failed"]
    failed = events[-1]
    assert (failed["error_class"], failed["retryable"], failed["attempts"]) == (
        "http_401",
        False,
        1,
    )


# ---- playback with hls.js ------------------------------------------------------------------

SEGMENTS_HELD = re.compile(r"/seg_0000[12]\.m4s")
PLAY = """({ url, uid }) => {
  const video = document.getElementById("video");
  const hls = new Hls();
  window.hls = hls;
  window.view = tel.attachHls(hls, video, { videoId: uid });
  hls.on(Hls.Events.MANIFEST_PARSED, () => video.play());
  hls.loadSource(url);
  hls.attachMedia(video);
}"""


@pytest.fixture(scope="module")
def twelve_seconds(server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A 12 s clip (three 4 s segments) processed by the server."""
    clip = tmp_path_factory.mktemp("sdk-clip") / "twelve.mp4"
    ffmpeg(*picture(320, 180, seconds=12), *tone(12), *X264, *AAC, str(clip))
    with server.client() as api:
        reply = api.post(
            "/api/v1/orders/SDK-PLAY/work/videos",
            content=clip.read_bytes(),
            headers={"Content-Type": "video/mp4", "X-Filename": "twelve.mp4"},
        )
        assert reply.status_code == 201, reply.text
        uid = reply.json()["uid"]

        def ready() -> dict[str, Any] | None:
            body: dict[str, Any] = api.get(f"/api/v1/videos/{uid}").json()
            assert body["status"]["state"] != "error", body["status"]
            return body if body["status"]["state"] == "ready" else None

        found: dict[str, Any] = wait_until(ready, READY_TIMEOUT_MS / 1000, "the 12 s clip")
    return found


def test_the_hls_adapter_reports_a_view_with_a_stall_a_seek_and_heartbeats(
    app: AppPage, server: LiveServer, key: str, twelve_seconds: dict[str, Any]
) -> None:
    """Segments 2 and 3 are held back: the video stalls at 4 s (a rebuffer), then a seek into
    segment 3 waits again (the seek's wait, not a rebuffer); released, it plays to the end."""
    page = app.page
    held: list[Route] = []
    page.route(SEGMENTS_HELD, lambda route: held.append(route))
    app.start(**options(server.url, key, "viewer-hls", heartbeatMs=500, flushIntervalMs=1000))
    page.evaluate(PLAY, {"url": twelve_seconds["playback"]["hls"], "uid": twelve_seconds["uid"]})
    page.wait_for_function("() => view.counters().rebuffer_count === 1", timeout=30_000)
    page.evaluate("() => { document.getElementById('video').currentTime = 9; }")
    page.wait_for_function("() => document.getElementById('video').seeking")
    page.unroute(SEGMENTS_HELD)
    for route in held:
        with contextlib.suppress(PlaywrightError):  # hls.js gave it up for the seek
            route.continue_()
    page.wait_for_function("() => document.getElementById('video').ended", timeout=30_000)
    assert page.evaluate("() => view.counters().rebuffer_count") == 1
    page.evaluate("() => tel.flush()")

    events = wait_for_events(server, has_types("view_end"), viewer_id="viewer-hls")
    view = one_sequence(events, "view_id")
    types = types_of(view)
    assert types.index("player_ready") < types.index("play_request") < types.index("playing")
    # Playwright's evaluate runs as a user gesture: to the page, PLAY came from a click
    assert view[types.index("play_request")]["autoplay"] is False
    assert types.count("rebuffer_start") == types.count("rebuffer_end") == 1
    assert types.index("playing") < types.index("rebuffer_start") < types.index("rebuffer_end")
    assert types.index("rebuffer_end") < types.index("seeking") < types.index("seeked")
    assert types.count("playing") >= 2  # the first frame, and playing again after the seek
    assert "pause" not in types  # the pause a browser fires before `ended` is not the viewer's
    assert all(
        e["fatal"] is False and e["category"] == "warning" for e in view if e["type"] == "error"
    )
    (rendition, *_) = [e for e in view if e["type"] == "rendition_change"]
    assert (rendition["width"], rendition["height"]) == (320, 180) and rendition["bitrate"] > 0
    assert {(e["video_id"], e["player"]) for e in view} == {(twelve_seconds["uid"], "hls.js")}

    end = view[-1]
    assert end["type"] == "view_end" and end["reason"] == "completed"
    assert end["rebuffer_count"] == 1 and end["watch_ms"] > 0 and end["startup_ms"] >= 0
    assert end["rebuffer_ms"] >= view[types.index("rebuffer_end")]["duration_ms"] > 0
    # the bytes hls.js loaded: the first segment at least, as the server serves it
    first = page.evaluate("() => hls.levels[hls.currentLevel].details.fragments[0].url")
    assert end["network_bytes"] >= len(httpx.get(first).content) > 0
    beats = [e for e in view if e["type"] == "heartbeat"]
    assert beats, "no heartbeat in a view of more than 12 s at one per 500 ms"
    counters = [
        (e["watch_ms"], e["rebuffer_ms"], e["rebuffer_count"], e["network_bytes"])
        for e in [*beats, end]
    ]
    for earlier, later in itertools.pairwise(counters):
        assert all(a <= b for a, b in zip(earlier, later, strict=True)), "counters went back"
    first_frame = types.index("playing")
    assert all("startup_ms" in e for e in view[first_frame:] if e["type"] == "heartbeat")
