"""Resume across process restarts: an uploader SIGKILLed mid-PATCH, then run again (library, CLI)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from reelout.client import upload
from reelout.client.state import UrlStore
from tests.client.conftest import MakeSource, MiB, Source, assert_stored
from tests.support.live import LiveServer
from tests.support.settings import ADMIN_TOKEN

CHUNK = 1 * MiB
REELOUT = Path(sys.executable).with_name("reelout")

# Runs in a child process: upload, and SIGKILL ourselves inside the PATCH after the first chunk.
KILLED_UPLOADER = """
import os, signal, sys
from reelout.client import upload

def die_mid_chunk(event):
    if event.offset >= int(sys.argv[4]) and event.sending > 0:
        os.kill(os.getpid(), signal.SIGKILL)

upload([sys.argv[1]], server=sys.argv[2], key=sys.argv[3], chunk_size=int(sys.argv[4]),
       progress=die_mid_chunk)
sys.exit("the upload was not interrupted")
"""


def killed_midway(server: LiveServer, src: Source, state: Path) -> tuple[str, int, str]:
    """Run the doomed uploader; return the stored URL, the server's offset and the video uid."""
    child = subprocess.run(
        [sys.executable, "-c", KILLED_UPLOADER, str(src.path), server.url, ADMIN_TOKEN, str(CHUNK)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    [url] = UrlStore(state).items().values()
    head = httpx.head(
        url,
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}", "Tus-Resumable": "1.0.0"},
        timeout=10,
    )
    assert head.status_code == 200
    offset = int(head.headers["Upload-Offset"])
    assert 0 < offset < src.size
    assert offset % CHUNK == 0  # with Upload-Checksum a half-sent chunk is never kept
    return url, offset, head.headers["Reelout-Video-Id"]


def test_library_resumes_after_the_process_was_killed(
    live_server: LiveServer, make_source: MakeSource, state: Path
) -> None:
    src = make_source(size=4 * MiB + 777)
    url, offset, uid = killed_midway(live_server, src, state)
    [res] = upload([src.path], server=live_server.url, key=ADMIN_TOKEN, chunk_size=CHUNK)
    assert res.ok, res.error
    assert (res.upload_url, res.resumed_from, res.video_uid) == (url, offset, uid)
    assert res.resumed_from > 0
    assert_stored(live_server, res.video_uid, res.upload_url, src)


def test_cli_resumes_after_the_process_was_killed(
    live_server: LiveServer, make_source: MakeSource, state: Path
) -> None:
    src = make_source(size=4 * MiB + 777)
    url, offset, uid = killed_midway(live_server, src, state)
    env = {
        **os.environ,
        "COLUMNS": "200",
        "REELOUT_URL": live_server.url,
        "REELOUT_KEY": ADMIN_TOKEN,
    }
    done = subprocess.run(
        [str(REELOUT), "upload", str(src.path), "--chunk-size", "1MiB"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert uid in done.stdout
    assert "1 uploaded, 0 failed" in done.stdout
    assert f"from {offset / 1e6:.1f} MB" in done.stdout
    assert_stored(live_server, uid, url, src)
    with live_server.client() as api:
        assert [v["uid"] for v in api.get("/api/v1/videos").json()["videos"]] == [uid]
