"""Interrupted, stalled, concurrent and crashed tus PATCHes (cases T31 to T34 and T40)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.support.live import LiveServer, StartServer, serve_in_thread
from tests.support.settings import ADMIN_TOKEN, make_settings

MiB = 1024 * 1024
T = {"Tus-Resumable": "1.0.0"}
CT = {"Content-Type": "application/offset+octet-stream"}
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


# -- a hand-written HTTP/1.1 request, so a test decides when each body byte leaves -------------
@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes


class RawRequest:
    """One HTTP/1.1 request on its own socket; the body is sent piece by piece with `send`."""

    def __init__(self, base_url: str, method: str, path: str, headers: dict[str, str]) -> None:
        parts = urlsplit(base_url)
        assert parts.hostname and parts.port
        self.sock = socket.create_connection((parts.hostname, parts.port), timeout=10)
        lines = [f"{method} {path} HTTP/1.1", f"Host: {parts.hostname}:{parts.port}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self.sent = 0
        self._buffer = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)
        self.sent += len(data)

    def send_slowly(self, data: bytes, seconds: float, pieces: int) -> None:
        """Spread `data` over about `seconds`, in `pieces` writes."""
        step = -(-len(data) // pieces)
        pause = seconds / pieces
        for start in range(0, len(data), step):
            self.send(data[start : start + step])
            time.sleep(pause)

    def response(self, timeout: float) -> RawResponse | None:
        """The server's reply, or None when it closed the connection without one."""
        self.sock.settimeout(timeout)
        try:
            while b"\r\n\r\n" not in self._buffer:
                block = self.sock.recv(65536)
                if not block:
                    return None
                self._buffer += block
        except ConnectionResetError:
            return None
        head, _, rest = self._buffer.partition(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        while len(rest) < length:
            block = self.sock.recv(65536)
            if not block:
                break
            rest += block
        self._buffer = rest[length:]
        return RawResponse(int(status_line.split()[1]), headers, rest[:length])

    def closed_by_server(self, timeout: float) -> bool:
        """True once the server has closed its side (EOF or reset) within `timeout`."""
        self.sock.settimeout(timeout)
        try:
            while True:
                if not self.sock.recv(65536):
                    return True
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False

    def close(self) -> None:
        """Close like a process that exits: FIN, after whatever was sent."""
        self.sock.close()

    def reset(self) -> None:
        """Close with an RST (SO_LINGER 0), like a connection torn down by a dying client."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()


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


def wait_for_disk(file: Path, expected: int, seconds: float = 5.0) -> int:
    """Wait until `file` holds `expected` bytes or stops growing; return its size."""
    deadline = time.monotonic() + seconds
    size, stable_since = -1, time.monotonic()
    while time.monotonic() < deadline:
        now = file.stat().st_size
        if now == expected:
            return now
        if now != size:
            size, stable_since = now, time.monotonic()
        elif time.monotonic() - stable_since > 1.0:
            return size
        time.sleep(0.02)
    return size


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
    wait_for_disk(upload_file(live_server, path), client.sent)

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
    time.sleep(0.5)  # let the server read everything sent; the body then stalls

    started = time.monotonic()
    offset = head_offset(http, path)
    elapsed = time.monotonic() - started
    assert elapsed < 3.0, f"HEAD took {elapsed:.2f}s behind a stalled PATCH"
    assert offset == stalled.sent

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
    time.sleep(0.5)

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
    server = serve_in_thread(make_settings(tmp_path, tus_read_timeout_seconds=1.0))
    try:
        with server.client() as http:
            data = os.urandom(4 * MiB)
            path = create_upload(http, len(data))
            stalled = raw_patch(server.url, path, 0, len(data))
            stalled.send(data[: MiB + MiB // 2 + 77])
            started = time.monotonic()
            reply = stalled.response(timeout=6)
            elapsed = time.monotonic() - started
            # An interrupted read answers 5xx (tus clients retry those, never other 4xx).
            assert reply is not None, "the server hung up without answering"
            assert reply.status >= 500, f"{reply.status} {reply.body!r}"
            assert int(reply.headers["upload-offset"]) == stalled.sent
            assert 0.8 < elapsed < 5.0, f"the stalled body was given up after {elapsed:.2f}s"
            assert stalled.closed_by_server(timeout=3), "the server left the connection open"
            stalled.close()

            assert head_offset(http, path) == stalled.sent
            # The lock was released: a new PATCH is served at once, not after a takeover.
            started = time.monotonic()
            finish_from(http, path, data)
            assert time.monotonic() - started < 3.0
            assert_stored(http, path, data)
    finally:
        server.stop()


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
    deadline = time.monotonic() + 10
    while file.stat().st_size < 4 * MiB and time.monotonic() < deadline:
        time.sleep(0.01)
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
        time.sleep(0.5)
        started = time.monotonic()
        offset = head_offset(via_second, path)
        assert time.monotonic() - started < 3.0
        assert offset == stalled.sent
        assert_told_to_stop(stalled.response(timeout=5), stalled.sent)
        stalled.close()
        finish_from(via_second, path, data)
        assert_stored(via_first, path, data)
