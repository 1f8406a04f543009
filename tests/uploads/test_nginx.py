"""The shipped nginx example (deploy/nginx/reelout.conf) in front of a real server, with tus through it."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from reelout.config import Settings
from tests.media.clips import Clips
from tests.media.test_pipeline import upload
from tests.support.jobs import run_jobs
from tests.support.live import LiveServer, serving
from tests.support.nginx import nginx_in_front
from tests.support.settings import ADMIN_TOKEN, make_settings
from tests.support.waiting import wait_until

T = {"Tus-Resumable": "1.0.0", "Authorization": f"Bearer {ADMIN_TOKEN}"}
MiB = 1024 * 1024
ACCEL = "/_reelout_media"


@pytest.fixture
def proxied(tmp_path: Path) -> Iterator[tuple[LiveServer, str]]:
    settings = make_settings(
        tmp_path,
        behind_proxy=True,
        media_accel_redirect=ACCEL,
        console_login_attempts_per_minute=Settings().console_login_attempts_per_minute,
    )
    with serving(settings) as server, nginx_in_front(server, tmp_path / "nginx") as proxy_url:
        yield server, proxy_url


def test_tus_through_the_nginx_example_streams_bodies(proxied: tuple[LiveServer, str]) -> None:
    server, proxy_url = proxied
    data = os.urandom(6 * MiB)
    seen_while_streaming: list[int] = []
    with httpx.Client(base_url=proxy_url, headers=T, timeout=60) as client:
        created = client.post("/files/", headers={"Upload-Length": str(len(data))})
        assert created.status_code == 201
        location = created.headers["Location"]
        assert location.startswith(proxy_url + "/files/"), (
            "Location names the proxy, not the backend"
        )
        upload_id = location.rsplit("/", 1)[-1]

        def body() -> Iterator[bytes]:
            yield data[: 3 * MiB]
            wait_until(
                lambda: server.runtime.upload_store.size(upload_id) >= 2 * MiB,
                5,
                "the backend to get 2 MiB while the body streams (nginx must not buffer it)",
            )
            seen_while_streaming.append(server.runtime.upload_store.size(upload_id))
            yield data[3 * MiB :]

        reply = client.patch(
            location,
            content=body(),
            headers={"Content-Type": "application/offset+octet-stream", "Upload-Offset": "0"},
        )
        assert reply.status_code == 204, reply.text
        assert seen_while_streaming[0] >= 2 * MiB, "nginx must not buffer the request body"
        assert client.get(location).content == data
        uid = reply.headers["Reelout-Video-Id"]
        video = client.get(f"/api/v1/videos/{uid}").json()
        assert video["original_sha256"] == hashlib.sha256(data).hexdigest()


def test_nginx_sends_published_media_that_reelout_vouched_for(
    proxied: tuple[LiveServer, str], clips: Clips
) -> None:
    server, proxy_url = proxied
    app = "https://app.example.com"
    with httpx.Client(base_url=proxy_url, headers=T, timeout=60) as client:
        uid = upload(client, clips("tiny"))
        run_jobs(server.runtime)
        client.patch(f"/api/v1/videos/{uid}", json={"allowed_origins": [app]})
        video = client.get(f"/api/v1/videos/{uid}").json()
    mp4_url = video["playback"]["mp4"]
    assert mp4_url.startswith(proxy_url + "/media/")
    on_disk = (server.runtime.settings.data_dir / "media" / uid).glob("v-*/video.mp4")
    data = next(on_disk).read_bytes()
    with httpx.Client(timeout=30) as http:
        whole = http.get(mp4_url, headers={"Origin": app})
        assert whole.status_code == 200 and whole.content == data
        assert whole.headers["server"].startswith("nginx")
        assert whole.headers["content-type"] == "video/mp4"
        assert whole.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert whole.headers["access-control-allow-origin"] == app
        assert "x-accel-redirect" not in whole.headers
        part = http.get(mp4_url, headers={"Range": "bytes=10-19"})
        assert (part.status_code, part.content) == (206, data[10:20])
        again = http.get(mp4_url, headers={"If-None-Match": whole.headers["etag"]})
        assert again.status_code == 304
        refused = http.get(mp4_url, headers={"Origin": "https://elsewhere.example"})
        assert not refused.headers.get("access-control-allow-origin")
        assert http.get(f"{proxy_url}{ACCEL}/{uid}/x/video.mp4").status_code == 404, "internal"
        master = http.get(video["playback"]["hls"])
        assert master.headers["content-type"] == "application/vnd.apple.mpegurl"
        assert master.text.startswith("#EXTM3U")
