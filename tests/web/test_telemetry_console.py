"""The console reports its own uploads and playback through the browser SDK, as the signed-in
admin, into its flags' environment: the events land in the database, valid, one id and one
`seq` per upload or view, with the flags the admin is served."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from reelout.telemetry import events as model
from tests.support.live import LiveServer
from tests.support.telemetry import (
    Event,
    has_types,
    one_sequence,
    types_of,
    wait_for_events,
)
from tests.support.waiting import wait_until
from tests.web.conftest import READY_TIMEOUT_MS, Clips, Console, video

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("console-browser")]


def flush(console: Console) -> None:
    console.page.evaluate("() => window.reeloutTelemetry.flush()")


def served(console: Console) -> tuple[str, dict[str, str]]:
    """The admin's targeting key (the events' viewer) and the variants the page was served."""
    flags = console.page.evaluate("() => window.reelout.flags")
    variants = {key: flag["variant"] for key, flag in flags["flags"].items() if flag["variant"]}
    return flags["context"]["targetingKey"], variants


def reported(server: LiveServer, until: Callable[[list[Event]], bool], **match: Any) -> list[Event]:
    """The events the console itself sent (the server's own facts about the same upload or
    video, written by the telemetry job, are left out)."""
    return wait_for_events(server, until, source="client", **match)


def split(events: list[Event]) -> tuple[list[Event], list[list[Event]]]:
    """A video's events: its upload's, and each view's (in order of arrival)."""
    uploads = [event for event in events if event.get("upload_id")]
    view_ids = list(dict.fromkeys(event["view_id"] for event in events if event.get("view_id")))
    views = [
        one_sequence([e for e in events if e.get("view_id") == v], "view_id") for v in view_ids
    ]
    return uploads, views


def check_view_played_to_the_end(view: list[Event], player: str) -> Event:
    types = types_of(view)
    assert types[0] in ("play_request", "player_ready")
    assert types.index("play_request") < types.index("playing")
    assert view[types.index("play_request")]["autoplay"] is True  # the console plays at once
    end = view[-1]
    assert end["type"] == "view_end" and end["reason"] == "completed"
    assert isinstance(end["startup_ms"], int) and end["watch_ms"] > 0
    assert {event["player"] for event in view} == {player}
    return end


def test_a_tus_upload_and_its_playback_report_their_events(
    console: Console, server: LiveServer, clips: Clips
) -> None:
    clip = clips("tiny")
    console.choose("TEL-1", "work", "tus", clip)
    console.page.click("#start")
    console.wait_state("ready")
    console.wait("$('player').ended")
    uid = console.uid()
    viewer, variants = served(console)
    assert variants, "the console's flags carry no variant"
    flush(console)

    events = reported(server, has_types("upload_completed", "view_end"), video_id=uid)
    for event in events:
        model.parse(event)
        assert (event["environment"], event["source"]) == ("development", "client")
        assert event["viewer_id"] == viewer and event["flags"] == variants
        assert event["platform"] == "web" and event["app_version"].startswith("console-")
    uploads, views = split(events)

    upload = one_sequence(uploads, "upload_id")
    types = types_of(upload)
    assert types[0] == "upload_started" and types[-1] == "upload_completed"
    assert set(types[1:-1]) == {"upload_progress"}
    completed = upload[-1]
    assert (completed["method"], completed["attempts"]) == ("tus", 1)
    assert completed["bytes"] == clip.stat().st_size == video(server, uid)["size"]

    (view,) = views
    assert "player_ready" in types_of(view)
    check_view_played_to_the_end(view, "hls.js")
    assert console.page.evaluate("() => window.reelout.view.id") == view[0]["view_id"]


@pytest.mark.parametrize(("path", "method"), [("direct", "direct"), ("legacy", "base64")])
def test_direct_and_legacy_uploads_report_their_method(
    console: Console, server: LiveServer, clips: Clips, path: str, method: str
) -> None:
    clip = clips("tiny")
    console.choose(f"TEL-{path}", "inbound", path, clip)
    console.page.click("#start")
    console.wait("window.reelout.tracker && window.reelout.tracker.state === 'completed'")
    upload_id = console.page.evaluate("() => window.reelout.tracker.id")
    flush(console)
    events = reported(server, has_types("upload_completed"), upload_id=upload_id)
    upload = one_sequence(events, "upload_id")
    assert types_of(upload)[0] == "upload_started"
    completed = upload[-1]
    assert completed["type"] == "upload_completed"
    assert (completed["method"], completed["bytes"]) == (method, clip.stat().st_size)
    assert completed["video_id"] == console.uid()


def test_a_cancelled_upload_is_reported_abandoned(
    console: Console, server: LiveServer, clips: Clips
) -> None:
    console.choose("TEL-CANCEL", "inbound", "direct", clips("no_audio"))
    console.throttle_uploads(40_000)
    console.page.click("#start")
    console.wait("Number($('progress').dataset.sent) > 40000")
    console.page.click("#cancel")
    console.wait("$('status').textContent === 'Upload cancelled'")
    upload_id = console.page.evaluate("() => window.reelout.tracker.id")
    flush(console)
    events = reported(server, has_types("upload_abandoned"), upload_id=upload_id)
    assert types_of(one_sequence(events, "upload_id"))[-1] == "upload_abandoned"


def test_leaving_the_page_mid_upload_reports_it_abandoned(
    console: Console, server: LiveServer, clips: Clips
) -> None:
    """The page hide send of the console: a keepalive fetch with the CSRF header (a beacon
    cannot carry it)."""
    console.choose("TEL-LEAVE", "work", "tus", clips("no_audio"))
    console.throttle_uploads(40_000)
    console.page.click("#start")
    console.wait("Number($('progress').dataset.sent) > 40000")
    upload_id = console.page.evaluate("() => window.reelout.tracker.id")
    console.page.goto("about:blank")
    events = reported(server, has_types("upload_abandoned"), upload_id=upload_id)
    upload = one_sequence(events, "upload_id")
    assert types_of(upload)[0] == "upload_started" and types_of(upload)[-1] == "upload_abandoned"
    assert "upload_completed" not in types_of(upload)


@pytest.fixture(scope="module")
def ready_video(server: LiveServer, clips: Clips) -> dict[str, Any]:
    """A clip uploaded by the API and processed."""
    path = clips("landscape")
    with server.client() as api:
        reply = api.post(
            "/api/v1/orders/TEL-PLAY/work/videos",
            content=path.read_bytes(),
            headers={"Content-Type": "video/mp4", "X-Filename": path.name},
        )
        assert reply.status_code == 201, reply.text
        uid = reply.json()["uid"]

    def ready() -> dict[str, Any] | None:
        body = video(server, uid)
        assert body["status"]["state"] != "error", body["status"]
        return body if body["status"]["state"] == "ready" else None

    return wait_until(ready, READY_TIMEOUT_MS / 1000, "the clip to be ready", interval=0.2)


def test_the_mp4_fallback_ends_the_failed_hls_view_and_reports_its_own(
    console: Console, server: LiveServer, ready_video: dict[str, Any]
) -> None:
    uid = ready_video["uid"]
    console.page.route(
        "**/master.m3u8", lambda route: route.fulfill(status=200, body="not a playlist")
    )
    try:
        console.page.goto("about:blank")
        console.page.goto(f"{console.base_url}/console#watch={uid}")
        console.wait("$('player').ended")
    finally:
        console.page.unroute("**/master.m3u8")
    flush(console)
    viewer, _ = served(console)
    events = reported(
        server,
        lambda found: types_of(found).count("view_end") >= 2,
        video_id=uid,
        viewer_id=viewer,
    )
    failed, fallback = split(events)[1][-2:]
    assert types_of(failed) == ["play_request", "error", "view_end"]
    error = failed[1]
    assert (error["code"], error["fatal"], error["before_first_frame"]) == (
        "manifestParsingError",
        True,
        True,
    )
    assert failed[-1]["reason"] == "error" and "startup_ms" not in failed[-1]
    assert {event["player"] for event in failed} == {"hls.js"}
    check_view_played_to_the_end(fallback, "other")


def test_the_video_page_reports_its_playback(
    console: Console, server: LiveServer, ready_video: dict[str, Any]
) -> None:
    uid = ready_video["uid"]
    console.page.goto(f"{console.base_url}/console/videos/{uid}")
    console.wait("$('player').ended")
    view_id = console.page.evaluate("() => window.reelout.view.id")
    flush(console)
    events = reported(server, has_types("view_end"), view_id=view_id)
    check_view_played_to_the_end(one_sequence(events, "view_id"), "hls.js")
