"""Interrupted, stalled, concurrent and crashed tus PATCHes (cases T31 to T34 and T40)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.support.live import LiveServer, StartServer, serving
from tests.support.raw_http import RawRequest, RawResponse
from tests.support.settings import ADMIN_TOKEN, make_settings
from tests.support.waiting import wait_until

MiB = 1024 * 1024
T = {"Tus-Resumable": "1.0.0"}
CT = {"Content-Type": "application/offset+octet-stream"}
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def raw_patch(base_url: str, path: str, offset: int, content_length: int) -> RawRequest:
    headers = {
        **AUTH,
        **T,
        **CT,
        "Upload-Offset": str(offset),
        "Content-Length": str(content_length),
    }
    return RawRequest(base_url, "PATCH", path, headers)


# -- plain tus calls over httpx -----------------------------------------------------------------
def create_upload(http: httpx.Client, length: int) -> str:
    reply = http.post("/files/", headers={**T, "Upload-Length": str(length)})
    assert reply.status_code == 201, reply.text
    return urlsplit(reply.headers["Location"]).path


def head_offset(http: httpx.Client, path: str) -> int:
    reply = http.head(path, headers=T)
    assert reply.status_code == 200, f"HEAD {path} -> {reply.status_code} {reply.headers}"
    return int(reply.headers["Upload-Offset"])


def patch(http: httpx.Client, path: str, offset: int, data: bytes) -> httpx.Response:
    return http.patch(path, content=data, headers={**T, **CT, "Upload-Offset": str(offset)})


def finish_from(http: httpx.Client, path: str, data: bytes) -> None:
    """Resume `path` from its HEAD offset to the end of `data`."""
    offset = head_offset(http, path)
    reply = patch(http, path, offset, data[offset:])
    assert reply.status_code == 204, f"PATCH at {offset} -> {reply.status_code} {reply.text}"
    assert int(reply.headers["Upload-Offset"]) == len(data)


def assert_stored(http: httpx.Client, path: str, data: bytes) -> None:
    """HEAD offset = length, and both the video's sha256 and the download match `data`."""
    sha = hashlib.sha256(data).hexdigest()
    head = http.head(path, headers=T)
    assert head.headers["Upload-Offset"] == head.headers["Upload-Length"] == str(len(data))
    video = http.get(f"/api/v1/videos/{head.headers['Reelout-Video-Id']}")
    assert video.status_code == 200, video.text
    assert video.json()["original_sha256"] == sha
    assert video.json()["status"]["state"] == "queued"
    download = http.get(path)
    assert download.status_code == 200
    assert hashlib.sha256(download.content).hexdigest() == sha


def assert_told_to_stop(reply: RawResponse | None, sent: int) -> None:
    """The interrupted PATCH answers 400 or 5xx (never 2xx), with its kept offset if any."""
    if reply is None:
        return  # the server closed the connection instead of answering: also allowed
    assert reply.status == 400 or reply.status >= 500, f"{reply.status} {reply.body!r}"
    if "upload-offset" in reply.headers:
        assert int(reply.headers["upload-offset"]) == sent


@pytest.fixture
def http(live_server: LiveServer) -> Iterator[httpx.Client]:
    with live_server.client() as client:
        yield client


# -- T31 ---------------------------------------------------------------------------------------
def upload_file(server: LiveServer, path: str) -> Path:
    return server.runtime.settings.data_dir / "uploads" / path.rsplit("/", 1)[-1]


def patch_finished(server: LiveServer, path: str) -> Callable[[], bool]:
    """Whether the server is done with the PATCH on `path`: it wrote something and let go of
    the upload's lock (so every byte it received is on disk)."""
    upload_id = path.rsplit("/", 1)[-1]
    file = upload_file(server, path)
    return lambda: file.stat().st_size > 0 and not server.runtime.locker.is_held(upload_id)


@pytest.mark.parametrize("how", ["slow-fin", "slow-rst", "burst-fin"])
def test_t31_client_killed_mid_patch_keeps_the_bytes_received(
    live_server: LiveServer, http: httpx.Client, how: str
) -> None:
    data = os.urandom(8 * MiB)
    path = create_upload(http, len(data))
    client = raw_patch(live_server.url, path, 0, len(data))
    part = data[: 3 * MiB + 4321]
    if how.startswith("slow"):
        client.send_slowly(part, seconds=2.0, pieces=40)
    else:
        client.send(part)
    client.reset() if how.endswith("rst") else client.close()
    # A HEAD sent while the server is still reading the dead client's bytes would (rightly)
    # stop that PATCH early; wait until the server has written what it received.
    wait_until(patch_finished(live_server, path), 10, "the server to end the cut PATCH")

    offset = head_offset(http, path)
    if how.endswith("rst"):
        # An RST makes the kernel drop what the server had not read yet: only a bound holds.
        assert 0 < offset <= client.sent
    else:
        assert offset == client.sent, f"sent {client.sent} bytes, the server kept {offset}"
    finish_from(http, path, data)
    assert_stored(http, path, data)


# -- T32 ---------------------------------------------------------------------------------------
def test_t32_head_during_a_stalled_patch_answers_fast_with_a_fresh_offset(
    live_server: LiveServer, http: httpx.Client
) -> None:
    data = os.urandom(6 * MiB)
    path = create_upload(http, len(data))
    stalled = raw_patch(live_server.url, path, 0, len(data))
    stalled.send(data[: 2 * MiB + 12345])
    stalled.wait_until_read()  # the server has everything sent; the body then stalls

    # the stalled PATCH's read timeout (REELOUT_TUS_READ_TIMEOUT_SECONDS) is 30 s away: a HEAD
    # that waited for it would time out here; it asks the PATCH to let go and answers
    reply = http.head(path, headers=T, timeout=10)
    assert reply.status_code == 200, f"HEAD {path} -> {reply.status_code}"
    assert int(reply.headers["Upload-Offset"]) == stalled.sent

    assert_told_to_stop(stalled.response(timeout=5), stalled.sent)
    stalled.close()
    finish_from(http, path, data)
    assert_stored(http, path, data)


# -- T33 ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("head_first", [True, False], ids=["head-then-patch", "patch-directly"])
def test_t33_second_patch_takes_over_with_exactly_one_writer(
    live_server: LiveServer, http: httpx.Client, head_first: bool
) -> None:
    data = os.urandom(8 * MiB)
    path = create_upload(http, len(data))
    first = raw_patch(live_server.url, path, 0, len(data))
    first.send(data[: 3 * MiB + 999])
    first.wait_until_read()

    # Other uploads keep flowing while this one's PATCH is stalled.
    other = os.urandom(4 * MiB + 1)
    other_path = create_upload(http, len(other))
    started = time.monotonic()
    reply = patch(http, other_path, 0, other)
    assert reply.status_code == 204, reply.text
    assert time.monotonic() - started < 5.0
    assert_stored(http, other_path, other)

    offset = head_offset(http, path) if head_first else first.sent
    assert offset == first.sent
    rest = data[offset:]
    second = raw_patch(live_server.url, path, offset, len(rest))
    second.send(rest[: len(rest) // 2])
    # Taking the lock told the first PATCH to stop: it answers (or hangs up) ...
    assert_told_to_stop(first.response(timeout=5), offset)
    # ... and whatever its connection still sends must not land in the upload.
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        first.send(b"\xee" * MiB)
    second.send(rest[len(rest) // 2 :])
    reply_2 = second.response(timeout=10)
    assert reply_2 is not None, "the second PATCH got no response"
    assert reply_2.status == 204, f"{reply_2.status} {reply_2.body!r}"
    assert int(reply_2.headers["upload-offset"]) == len(data)
    first.close()
    second.close()
    assert_stored(http, path, data)


# -- T34 ---------------------------------------------------------------------------------------
def test_t34_stalled_body_ends_at_the_read_timeout_keeping_its_bytes(tmp_path: Path) -> None:
    with (
        serving(make_settings(tmp_path, tus_read_timeout_seconds=1.0)) as server,
        server.client() as http,
    ):
        data = os.urandom(4 * MiB)
        path = create_upload(http, len(data))
        stalled = raw_patch(server.url, path, 0, len(data))
        stalled.send(data[: MiB + MiB // 2 + 77])
        stalled.wait_until_read()
        reply = stalled.response(timeout=6)  # REELOUT_TUS_READ_TIMEOUT_SECONDS is 1 here
        # An interrupted read answers 5xx (tus clients retry those, never other 4xx).
        assert reply is not None, "the server hung up without answering"
        assert reply.status >= 500, f"{reply.status} {reply.body!r}"
        assert int(reply.headers["upload-offset"]) == stalled.sent
        assert stalled.closed_by_server(timeout=3), "the server left the connection open"
        stalled.close()

        assert head_offset(http, path) == stalled.sent
        # The lock was released: a new PATCH is served at once, not after a takeover.
        started = time.monotonic()
        finish_from(http, path, data)
        assert time.monotonic() - started < 3.0
        assert_stored(http, path, data)


# -- T40 ---------------------------------------------------------------------------------------
@pytest.mark.slow
def test_t40_server_killed_mid_patch_resumes_from_the_bytes_on_disk(
    tmp_path: Path, start_server: StartServer
) -> None:
    data_dir = tmp_path / "data"
    first = start_server()
    data = os.urandom(16 * MiB)
    with httpx.Client(base_url=first.url, headers=AUTH, timeout=30) as http:
        path = create_upload(http, len(data))
    file = data_dir / "uploads" / path.rsplit("/", 1)[-1]
    upload = raw_patch(first.url, path, 0, len(data))
    upload.send(data[: 5 * MiB + 4321])
    # Kill once the server has written some MiB (it writes ~1 MiB batches; the rest of the
    # body is still in its memory or socket buffers, and is lost with the process).
    wait_until(lambda: file.stat().st_size >= 4 * MiB, 10, "4 MiB on disk", interval=0.005)
    first.kill()
    upload.close()

    on_disk = file.stat().st_size
    assert 4 * MiB <= on_disk <= upload.sent
    second = start_server()
    with httpx.Client(base_url=second.url, headers=AUTH, timeout=30) as http:
        assert head_offset(http, path) == on_disk
        assert file.read_bytes() == data[:on_disk]
        finish_from(http, path, data)
        assert_stored(http, path, data)


# -- several processes on one data folder (REELOUT_WORKERS) --------------------------------------
@pytest.mark.slow
def test_a_head_in_another_process_stops_the_stalled_writer(
    start_server: StartServer,
) -> None:
    """T32 across processes: the file locker asks a writer in another process to stop."""
    first = start_server("--workers", "2", log="a.log")
    second = start_server("--workers", "2", log="b.log")
    data = os.urandom(6 * MiB)
    with (
        httpx.Client(base_url=first.url, headers=AUTH, timeout=30) as via_first,
        httpx.Client(base_url=second.url, headers=AUTH, timeout=30) as via_second,
    ):
        path = create_upload(via_first, len(data))
        stalled = raw_patch(first.url, path, 0, len(data))
        stalled.send(data[: 2 * MiB + 777])
        stalled.wait_until_read()
        started = time.monotonic()
        offset = head_offset(via_second, path)
        assert time.monotonic() - started < 3.0
        assert offset == stalled.sent
        assert_told_to_stop(stalled.response(timeout=5), stalled.sent)
        stalled.close()
        finish_from(via_second, path, data)
        assert_stored(via_first, path, data)
