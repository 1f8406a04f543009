"""The processing job first makes the original durable and checks it against the upload."""

from __future__ import annotations

import httpx
import pytest

from tests.support.jobs import run_jobs
from tests.support.live import LiveServer
from tests.support.stores import damage_original


def upload(api: httpx.Client, data: bytes) -> str:
    reply = api.post(
        "/api/v1/orders/S-1/inbound/videos", content=data, headers={"Content-Type": "video/mp4"}
    )
    assert reply.status_code == 201
    uid: str = reply.json()["uid"]
    return uid


@pytest.mark.both_stores
def test_an_intact_original_goes_on_to_be_probed(live_server: LiveServer) -> None:
    with live_server.client() as api:
        uid = upload(api, b"a" * 5000)
        run_jobs(live_server.runtime)
        video = api.get(f"/api/v1/videos/{uid}").json()
    assert video["status"]["state"] == "error"
    assert video["status"]["error_code"] == "ERR_NON_VIDEO", "secured, then found not a video"


@pytest.mark.both_stores
def test_an_original_damaged_before_it_reached_the_disk_fails_clearly(
    live_server: LiveServer,
) -> None:
    with live_server.client() as api:
        uid = upload(api, b"a" * 5000)
        damage_original(live_server.runtime, uid, b"a" * 4096)  # what a power loss can leave
        run_jobs(live_server.runtime)
        video = api.get(f"/api/v1/videos/{uid}").json()
    assert video["status"]["state"] == "error"
    assert video["status"]["error_code"] == "ERR_MALFORMED"
    assert "upload the video again" in video["status"]["error_text"]
