"""The upload reaper ends abandoned uploads: direct uploads cut, stalled or orphaned by a dead
server, and creator links never used; the video says so and a `video.error` webhook goes out."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from reelout.clock import ManualClock
from reelout.jobs.registry import JobContext
from reelout.media import history
from reelout.media.models import Video
from reelout.media.schemas import VideoState
from reelout.runtime import Runtime
from reelout.uploads.jobs import REAP_JOB
from reelout.uploads.jobs import reap_expired as reaper_job
from reelout.webhooks.models import WebhookEvent
from tests.support.live import LiveServer, StartServer, live_server_fixture
from tests.support.raw_http import RawRequest
from tests.support.settings import ADMIN_TOKEN, make_settings, start_runtime
from tests.support.waiting import wait_until

MiB = 1024 * 1024
ABANDON = 300
STAGE = "/api/v1/orders/O-9/inbound/videos"
T = {"Tus-Resumable": "1.0.0"}


def run_reaper(rt: Runtime) -> None:
    """The periodic `uploads.reap` job, as a worker runs it."""
    reaper_job(JobContext(rt, 0, REAP_JOB, {}, 1, 1, "test", 60.0))


def video(rt: Runtime, uid: str) -> Video:
    with rt.db.read() as session:
        row = session.get(Video, uid)
        assert row is not None
        return row


def error_events(rt: Runtime) -> list[dict[str, object]]:
    with rt.db.read() as session:
        rows = session.scalars(select(WebhookEvent).where(WebhookEvent.type == "video.error"))
        return [json.loads(row.body)["data"]["video"] for row in rows]


def uploading(rt: Runtime) -> list[str]:
    with rt.db.read() as session:
        return list(session.scalars(select(Video.uid).where(Video.state == "uploading")))


def direct_post(url: str, length: int) -> RawRequest:
    headers = {
        "Authorization": f"Bearer {ADMIN_TOKEN}",
        "Content-Type": "video/mp4",
        "Content-Length": str(length),
    }
    return RawRequest(url, "POST", STAGE, headers)


def assert_abandoned(rt: Runtime, uid: str) -> None:
    row = video(rt, uid)
    assert (row.state, row.error_code) == ("error", "ERR_UPLOAD_ABANDONED")
    assert not rt.media_store.has_original(uid), "the partial original is deleted"
    events = [e for e in error_events(rt) if e["uid"] == uid]
    assert len(events) == 1
    assert events[0]["status"]["error_code"] == "ERR_UPLOAD_ABANDONED"  # type: ignore[index]
    with rt.db.read() as session:
        last = history.history(session, uid).changes[-1]
    assert (last.from_state, last.to_state, last.error_code) == (
        VideoState.uploading,
        VideoState.error,
        "ERR_UPLOAD_ABANDONED",
    )
    assert last.reason == row.error_text


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


server = live_server_fixture(per_database=True, manual_clock=True, upload_abandon_seconds=ABANDON)


def test_a_direct_upload_cut_mid_body_leaves_nothing(server: LiveServer) -> None:
    cut = direct_post(server.url, 4 * MiB)
    cut.send(b"x" * MiB)
    wait_until(lambda: len(uploading(server.runtime)) == 1, message="the upload to start")
    cut.reset()  # a real client torn down mid-body
    wait_until(lambda: not uploading(server.runtime), message="the server to let go")
    with server.client() as api:
        assert api.get("/api/v1/videos").json()["videos"] == []
    assert list((server.runtime.settings.data_dir / "media").iterdir()) == []


def test_a_stalled_direct_upload_is_ended_after_the_abandon_time(
    server: LiveServer, clock: ManualClock
) -> None:
    rt = server.runtime
    stalled = direct_post(server.url, 3 * MiB)
    stalled.send(b"x" * MiB)
    wait_until(lambda: len(uploading(rt)) == 1, message="the upload to start")
    (uid,) = uploading(rt)
    original = rt.settings.data_dir / "media" / uid / "original"
    wait_until(
        lambda: original.is_file() and original.stat().st_size == MiB,
        message="the first bytes on disk",
    )
    clock.advance(ABANDON - 100)
    stalled.send(b"y" * 1024)  # a trickle of bytes arrives: the upload is alive
    wait_until(
        lambda: video(rt, uid).modified_at > video(rt, uid).created_at, message="the activity mark"
    )
    clock.advance(ABANDON - 1)  # the abandon time since creation, not since the last bytes
    run_reaper(rt)
    assert video(rt, uid).state == "uploading"
    assert rt.media_store.has_original(uid)

    clock.advance(2)  # the abandon time since the last bytes
    run_reaper(rt)
    assert_abandoned(rt, uid)
    stalled.send(b"z" * (2 * MiB - 1024))  # the client comes back and finishes: too late
    reply = stalled.response(timeout=10)
    assert reply is not None and reply.status == 410
    assert json.loads(reply.body)["code"] == "UPLOAD_ABANDONED"
    stalled.close()
    assert video(rt, uid).state == "error", "a late body never revives an ended upload"
    assert not rt.media_store.has_original(uid)


def test_a_direct_upload_whose_server_died_is_ended(
    tmp_path: Path, start_server: StartServer
) -> None:
    served = start_server()
    orphan = direct_post(served.url, 4 * MiB)
    orphan.send(b"x" * MiB)
    media = tmp_path / "data" / "media"
    wait_until(
        lambda: any(p.stat().st_size > 0 for p in media.glob("*/original")), message="bytes on disk"
    )
    served.kill()  # kill -9 mid-body: no handler runs to clean up
    orphan.close()
    settings = make_settings(tmp_path, upload_abandon_seconds=ABANDON)
    now = datetime.now(UTC)
    early = start_runtime(settings, ManualClock(now + timedelta(seconds=ABANDON - 60)))
    (uid,) = uploading(early)
    run_reaper(early)
    assert uploading(early) == [uid], "not before the abandon time"
    assert early.media_store.has_original(uid)
    early.db.dispose()

    late = start_runtime(settings, ManualClock(now + timedelta(seconds=ABANDON + 1)))
    run_reaper(late)
    assert_abandoned(late, uid)
    late.db.dispose()


def test_a_creator_link_never_used_is_ended(server: LiveServer, clock: ManualClock) -> None:
    rt = server.runtime
    with server.client() as api:
        unused = api.post("/api/v1/videos", json={"expires_in": 2 * ABANDON}).json()["uid"]
        started = api.post("/api/v1/videos", json={"expires_in": 2 * ABANDON}).json()
    with server.client(token=started["upload"]["token"]) as phone:
        assert phone.post("/files/", headers={**T, "Upload-Length": "10"}).status_code == 201
    clock.advance(2 * ABANDON - 1)  # past the abandon time, but the link can still be used
    run_reaper(rt)
    assert video(rt, unused).state == "uploading"
    clock.advance(2)  # the link expired unused
    run_reaper(rt)
    assert_abandoned(rt, unused)
    assert video(rt, started["uid"]).state == "uploading", "its tus upload ends by tus expiry"
    with server.client() as api:
        status = api.get(f"/api/v1/videos/{unused}").json()["status"]
    assert status["error_code"] == "ERR_UPLOAD_ABANDONED"
    assert "upload" in status["error_text"]
