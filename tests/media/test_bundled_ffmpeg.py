"""With no ffmpeg on PATH, `reelout serve` encodes with the pip-installed build and probes with
PyAV, and says so at start-up: `make run` needs no system packages."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx

from tests.media.clips import Clips
from tests.support.live import StartServer
from tests.support.settings import ADMIN_TOKEN
from tests.support.waiting import wait_until


def wait_ready(api: httpx.Client, uid: str, timeout: float = 60) -> dict[str, object]:
    """The video once processing ended (ready or error)."""

    def finished() -> dict[str, object] | None:
        video: dict[str, object] = api.get(f"/api/v1/videos/{uid}").json()
        state = video["status"]["state"]  # type: ignore[index]
        return video if state in ("ready", "error") else None

    found = wait_until(finished, timeout, f"video {uid} to be processed", interval=0.1)
    assert found is not None
    return found


def test_without_system_ffmpeg_the_bundled_build_does_the_work(
    start_server: StartServer, clips: Clips
) -> None:
    venv_bin = str(Path(sys.executable).parent)
    server = start_server(env={"PATH": venv_bin, "REELOUT_EMBEDDED_WORKER": "true"})
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=30) as api:
        reply = api.post(
            "/api/v1/orders/O-9/inbound/videos",
            content=clips("tiny").read_bytes(),
            headers={"Content-Type": "video/mp4"},
        )
        assert reply.status_code == 201
        video = wait_ready(api, reply.json()["uid"])
    assert video["status"] == {
        "state": "ready",
        "pct_complete": 100.0,
        "error_code": None,
        "error_text": None,
    }
    log = server.log.read_text()
    assert "from imageio-ffmpeg" in log and "probing with PyAV" in log


def test_start_up_names_the_system_ffmpeg_when_there_is_one(start_server: StartServer) -> None:
    server = start_server(env={"REELOUT_EMBEDDED_WORKER": "true"})
    wait_until(lambda: "media: ffmpeg" in server.log.read_text(), 10, "the ffmpeg log line")
    line = next(x for x in server.log.read_text().splitlines() if "media: ffmpeg" in x)
    assert "from PATH (/usr/bin/ffmpeg)" in line and "probing with /usr/bin/ffprobe" in line
