"""Two `reelout serve` hosts behind the nginx example, one PostgreSQL, one bucket, one worker host.

Each host has a data folder of its own; nothing but the database and the bucket is shared. A
tus-js-client upload alternates between the hosts, one host is SIGKILLed in the middle of it, the
client resumes through the other, a separate `reelout worker` encodes the video, and every host
plays it."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import reset_pg
from tests.flags.test_streams import bulk, by_key, kill, new_key, put_flags, stream_url
from tests.media.test_pipeline import make_long
from tests.support.commands import REELOUT, reelout_env
from tests.support.live import ServerProcess
from tests.support.nginx import nginx_balancing
from tests.support.settings import ADMIN_TOKEN
from tests.support.sse import EventStream
from tests.support.waiting import wait_until
from tests.uploads.test_tus_js_client import DRIVER, JS_DIR, node

pytestmark = [pytest.mark.postgres, pytest.mark.s3, pytest.mark.node, pytest.mark.slow]

__all__ = ["node"]  # the fixture, imported for this module's tests

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
SECRET = "rlo_secret_9xKq2mWv7LbT4nRc8YpZ3sHd6FgJ1aQe5UoI0"


class Fleet:
    """The shared settings of every host, and the hosts started on them."""

    def __init__(self, root: Path, database_url: str, storage_url: str) -> None:
        self.root = root
        self.env = {
            "REELOUT_DATABASE_URL": database_url,
            "REELOUT_STORAGE_URL": storage_url,
            "REELOUT_SECRET_KEY": SECRET,  # the same on every host: signed URLs, sessions
            "REELOUT_BEHIND_PROXY": "true",
            "REELOUT_EMBEDDED_WORKER": "false",
        }
        self.hosts: list[ServerProcess] = []
        self.workers: list[subprocess.Popen[bytes]] = []

    def host(self, name: str) -> ServerProcess:
        data = self.root / name
        data.mkdir(exist_ok=True)
        server = ServerProcess(data, self.root / f"{name}.log", env=self.env)
        self.hosts.append(server)
        return server

    def worker(self, name: str) -> subprocess.Popen[bytes]:
        data = self.root / name
        data.mkdir(exist_ok=True)
        env = reelout_env(data, REELOUT_ADMIN_TOKEN=ADMIN_TOKEN, **self.env)
        with (self.root / f"{name}.log").open("ab") as log:
            process = subprocess.Popen(
                [REELOUT, "worker"], env=env, cwd=data, stdout=log, stderr=subprocess.STDOUT
            )
        self.workers.append(process)
        return process

    def stop(self) -> None:
        for server in self.hosts:
            server.kill()
        for process in self.workers:
            process.kill()
            process.wait(10)


@pytest.fixture
def fleet(tmp_path: Path, pg_server_url: str, s3_storage: str) -> Iterator[Fleet]:
    reset_pg(pg_server_url)
    started = Fleet(tmp_path, pg_server_url, s3_storage)
    yield started
    started.stop()


def patches_by_upstream(access_log: Path) -> dict[str, int]:
    """How many PATCHes each API host answered with 204, from the example's access log."""
    counts: dict[str, int] = {}
    for line in access_log.read_text().splitlines():
        match = re.search(r'"PATCH /files/\S+ \S+" 204 .* (\S+)$', line)
        if match:
            counts[match.group(1)] = counts.get(match.group(1), 0) + 1
    return counts


def start_upload(node: str, endpoint: str, clip: Path) -> subprocess.Popen[str]:
    """tus-js-client in small, paced chunks (so the upload is many PATCHes over seconds),
    retrying failed requests as apps do."""
    options = {
        "endpoint": endpoint,
        "file": str(clip),
        "headers": AUTH,
        "chunkSize": 64 * 1024,
        "metadata": {"filename": clip.name, "filetype": "video/mp4"},
        "retryDelays": [0, 200, 500, 1000, 2000],
        "throttleBytesPerSecond": 256 * 1024,
    }
    return subprocess.Popen(
        [node, str(DRIVER), json.dumps(options)],
        cwd=JS_DIR,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finished(upload: subprocess.Popen[str]) -> dict[str, Any]:
    out, err = upload.communicate(timeout=120)
    report: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    assert report["ok"], f"tus-js-client failed: {report['error']}\n{err}"
    return report


def video_state(api: httpx.Client, uid: str) -> str:
    state: str = api.get(f"/api/v1/videos/{uid}").json()["status"]["state"]
    return state


def plays(base_url: str, uid: str) -> None:
    """The master playlist, a media playlist and its first segment, from this host."""
    with httpx.Client(base_url=base_url, headers=AUTH, timeout=30, follow_redirects=True) as api:
        video = api.get(f"/api/v1/videos/{uid}").json()
        master = api.get(video["playback"]["hls"])
        assert master.status_code == 200, master.text
        media_path = next(line for line in master.text.splitlines() if line.endswith(".m3u8"))
        media = api.get(httpx.URL(str(master.url)).join(media_path))
        assert media.status_code == 200, media.text
        segment = next(line for line in media.text.splitlines() if line.endswith(".m4s"))
        first = api.get(httpx.URL(str(media.url)).join(segment))
        assert first.status_code == 200 and len(first.content) > 0


def test_an_upload_survives_a_host_killed_mid_way_and_every_host_plays_it(
    fleet: Fleet, node: str, tmp_path: Path
) -> None:
    a, b = fleet.host("host-a"), fleet.host("host-b")
    clip = make_long(tmp_path)
    sha = hashlib.sha256(clip.read_bytes()).hexdigest()
    with nginx_balancing([a.url, b.url], tmp_path / "nginx") as entrance:
        access_log = tmp_path / "nginx" / "logs" / "reelout.access.log"
        upload = start_upload(node, entrance + "/files/", clip)
        wait_until(
            lambda: (
                len(patches_by_upstream(access_log)) == 2
                and sum(patches_by_upstream(access_log).values()) >= 4
            ),
            30,
            "PATCHes answered by both hosts",
        )
        a.kill()  # SIGKILL, in the middle of the upload
        before = patches_by_upstream(access_log)
        report = finished(upload)
        after = patches_by_upstream(access_log)
    host_b = b.url.removeprefix("http://")
    assert after[host_b] > before[host_b], "the rest of the upload went through host B"
    assert report["lastProgress"] == clip.stat().st_size
    upload_path = httpx.URL(report["url"]).path
    with httpx.Client(base_url=b.url, headers=AUTH, timeout=30) as api:
        head = api.head(upload_path, headers={"Tus-Resumable": "1.0.0"})
        assert head.headers["Upload-Offset"] == str(clip.stat().st_size)
        uid = head.headers["Reelout-Video-Id"]
        assert api.get(f"/api/v1/videos/{uid}").json()["original_sha256"] == sha
        assert hashlib.sha256(api.get(upload_path).content).hexdigest() == sha  # byte-exact

        fleet.worker("worker")  # no API host runs jobs: the worker host encodes it
        settled = wait_until(
            lambda: video_state(api, uid) not in ("queued", "processing") and video_state(api, uid),
            240,
            "the worker to publish",
        )
        assert settled == "ready", api.get(f"/api/v1/videos/{uid}").json()["status"]
    a_again = fleet.host("host-a")  # host A is back, on its own data folder as before
    for host in (a_again, b):
        plays(host.url, uid)


def test_a_kill_written_through_host_a_reaches_an_app_streaming_from_host_b(fleet: Fleet) -> None:
    """Host B polls for flag changes only every 60 s: the kill reaches B's stream through
    PostgreSQL's LISTEN/NOTIFY (bench/kill_switch.py --hosts 2 measures how fast: p99 < 1 s)."""
    fleet.env["REELOUT_FLAG_CHANGE_POLL_SECONDS"] = "60"
    a, b = fleet.host("host-a"), fleet.host("host-b")
    put_flags(a)  # type: ignore[arg-type]
    key = new_key(a)  # type: ignore[arg-type]
    with (
        b.client(token=key) as app,
        EventStream(httpx.Client(base_url=b.url), stream_url(bulk(app))) as events,
    ):
        events.next()
        revision = kill(a)  # type: ignore[arg-type]
        assert events.next_change(wait=5).id == f"production-r{revision}"
        assert by_key(bulk(app))["use_tus_upload"]["reason"] == "DISABLED"
