"""The Python telemetry client (`reelout.client.telemetry`) against a real Reelout: events arrive
once, rejections are final, a server that is down, slow or refusing costs the app nothing, and
unsent events wait on disk for the next client on the same spool folder."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from reelout.client import upload
from reelout.client.telemetry import Backoff, TelemetryClient, UploadTelemetry, upload_outcome
from reelout.client.uploader import UploadResult
from reelout.telemetry.models import TelemetryEvent
from tests.client.conftest import MakeSource
from tests.support.live import LiveServer, serve_in_thread
from tests.support.settings import ADMIN_TOKEN, make_settings
from tests.support.waiting import wait_until
from tests.telemetry.conftest import client_key

FAST = Backoff(first=0.05, most=0.5)  # retries come quickly in tests; real apps keep the default


def reserved_port() -> socket.socket:
    """A loopback port bound, never listening, for as long as the socket is open: connecting to
    it is refused while the server is down, no other test's free port can be this one, and the
    server binds it again all the same (SO_REUSEADDR on both sides)."""
    hold = socket.socket()
    hold.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    hold.bind(("127.0.0.1", 0))
    return hold


@dataclass
class Reelout:
    """A Reelout at a fixed loopback port that a test stops and starts again; its client key
    lives in its database, so it holds across restarts."""

    folder: Path
    settings: dict[str, Any]
    hold: socket.socket = field(default_factory=reserved_port)
    key: str = ""
    live: LiveServer | None = None

    @property
    def port(self) -> int:
        port: int = self.hold.getsockname()[1]
        return port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Reelout:
        settings = make_settings(self.folder, **self.settings)
        self.live = serve_in_thread(settings, port=self.port)
        self.key = self.key or client_key(self.live)
        return self

    def stop(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None

    def end(self) -> None:
        self.stop()
        self.hold.close()

    def stored(self) -> dict[str, dict[str, Any]]:
        """The events apps sent that the server stored, by event_id."""
        assert self.live is not None
        query = select(TelemetryEvent).where(TelemetryEvent.source == "client")
        with self.live.runtime.db.session() as session:
            rows = session.scalars(query).all()
            return {str(row.event_id): json.loads(row.body) for row in rows}


StartReelout = Callable[..., Reelout]
MakeClient = Callable[..., TelemetryClient]


@pytest.fixture
def start_reelout(tmp_path: Path) -> Iterator[StartReelout]:
    """`start_reelout(**settings)`: a running Reelout with a client key; all stopped at the end."""
    started: list[Reelout] = []

    def start(**settings: Any) -> Reelout:
        server = Reelout(tmp_path / f"reelout-{len(started)}", settings)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.end()


@pytest.fixture
def make_client() -> Iterator[MakeClient]:
    """`make_client(server, **options)`: a client of `server` that sends only when asked (or when
    a batch fills), retrying fast; all closed at the end."""
    made: list[TelemetryClient] = []

    def make(server: Reelout, **options: Any) -> TelemetryClient:
        options = {"flush_interval": 3600.0, "backoff": FAST, "viewer_id": "viewer-1", **options}
        client = TelemetryClient(server.url, server.key, **options)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close(timeout=5)


def delivered(server: Reelout, ids: list[str]) -> Callable[[], bool]:
    """For wait_until: every one of `ids` is stored (and nothing else from apps)."""
    return lambda: set(server.stored()) == set(ids)


def settled(client: TelemetryClient) -> Callable[[], bool]:
    """For wait_until: the client has nothing left to send and has read every answer."""
    return lambda: client.stats().pending == 0 and client.stats().queued == 0


# ---- delivery ------------------------------------------------------------------------------------


def test_events_are_stored_with_the_common_fields(
    start_reelout: StartReelout, make_client: MakeClient
) -> None:
    server = start_reelout()
    client = make_client(
        server,
        viewer_id="user-17",
        platform="linux",
        app_version="2.4.0",
        flags={"use_tus_upload": "on"},
    )
    first = client.track("upload_completed", bytes=1000, duration_ms=1200, method="tus")
    client.identify(viewer_id="user-18", flags={"use_tus_upload": "off"}, player="media_kit")
    second = client.track("play_request", autoplay=True, video_id="v-1")
    assert first and second
    assert client.flush()
    stored = server.stored()
    assert set(stored) == {first, second}
    assert stored[first]["viewer_id"] == "user-17"
    assert stored[first]["flags"] == {"use_tus_upload": "on"}
    assert stored[first]["platform"] == "linux"
    assert stored[first]["app_version"] == "2.4.0"
    assert stored[second]["viewer_id"] == "user-18"
    assert stored[second]["flags"] == {"use_tus_upload": "off"}
    assert stored[second]["player"] == "media_kit"
    assert stored[second]["autoplay"] is True
    assert stored[first]["session_id"] == stored[second]["session_id"]
    assert datetime.fromisoformat(stored[first]["client_time"]).tzinfo is not None
    stats = client.stats()
    assert (stats.tracked, stats.sent, stats.rejected, stats.dropped) == (2, 2, 0, 0)
    assert (stats.queued, stats.pending, stats.errors) == (0, 0, 0)


def test_the_thread_sends_a_full_batch_and_on_each_tick_by_itself(
    start_reelout: StartReelout, make_client: MakeClient
) -> None:
    server = start_reelout()
    batched = make_client(server, batch_size=3)
    ids = [batched.track("pause") for _ in range(3)]
    wait_until(delivered(server, ids), message="a full batch to go by itself")
    ticking = make_client(server, flush_interval=0.05)
    ids.append(ticking.track("seeking"))
    wait_until(delivered(server, ids), message="the flush interval to send the lone event")


def test_close_sends_what_is_left_and_later_events_are_counted(
    start_reelout: StartReelout, make_client: MakeClient
) -> None:
    server = start_reelout()
    with make_client(server) as client:
        ids = [client.track("heartbeat", watch_ms=10_000 * n) for n in range(5)]
    assert set(server.stored()) == set(ids)
    assert client.track("pause") is None
    stats = client.stats()
    assert (stats.sent, stats.dropped_closed, stats.tracked) == (5, 1, 6)
    assert client.flush() is False


def test_rejected_events_are_counted_and_never_sent_again(
    start_reelout: StartReelout, make_client: MakeClient
) -> None:
    server = start_reelout()
    client = make_client(server)
    good = client.track("rating", score=5)
    client.track("rating", score=9)  # out of 1 to 5
    client.track("teleport")  # no such type
    client.track("processing_ready")  # only the server reports it
    assert client.flush()
    assert (client.stats().sent, client.stats().rejected) == (1, 3)
    later = client.track("rating", score=4)
    assert client.flush()
    assert client.flush()
    stats = client.stats()
    assert (stats.sent, stats.rejected, stats.retries, stats.pending) == (2, 3, 0, 0)
    assert set(server.stored()) == {good, later}


def test_a_batch_over_the_servers_count_is_split(
    start_reelout: StartReelout, make_client: MakeClient
) -> None:
    server = start_reelout(telemetry_max_batch_events=3)
    client = make_client(server, batch_size=50)
    ids = [client.track("seeked") for _ in range(10)]
    assert client.flush()
    assert set(server.stored()) == set(ids)
    stats = client.stats()
    assert (stats.sent, stats.rejected, stats.batches) == (10, 0, 5)  # 10 → 5 → 2 a batch


def test_a_body_over_the_servers_bytes_is_split_and_a_lone_giant_rejected(
    start_reelout: StartReelout, make_client: MakeClient
) -> None:
    server = start_reelout(telemetry_max_body_bytes=1024)
    client = make_client(server, batch_size=50, gzip_min_bytes=10**9)
    ids = [client.track("pause", note=os.urandom(150).hex()) for _ in range(6)]
    giant = client.track("pause", note=os.urandom(600).hex())  # 1200 bytes alone
    assert giant is not None
    assert client.flush()
    assert set(server.stored()) == set(ids)
    stats = client.stats()
    assert (stats.sent, stats.rejected, stats.pending) == (6, 1, 0)


def test_gzip_lets_a_batch_fit_that_would_not_fit_plain(
    start_reelout: StartReelout, make_client: MakeClient
) -> None:
    server = start_reelout(telemetry_max_body_bytes=2048)
    packed = make_client(server, gzip_min_bytes=1024)
    plain = make_client(server, gzip_min_bytes=10**9)
    ids = []
    for client in (packed, plain):
        ids += [client.track("pause", note="audio-out-of-sync " * 10) for _ in range(20)]
        assert client.flush()
    assert set(server.stored()) == set(ids)
    assert packed.stats().batches == 1
    assert plain.stats().batches > 1


# ---- the server away ------------------------------------------------------------------------------


def test_events_wait_in_the_spool_while_the_server_is_down_even_across_clients(
    start_reelout: StartReelout, make_client: MakeClient, tmp_path: Path
) -> None:
    server = start_reelout()
    server.stop()  # the port is closed: every send fails to connect
    spool = tmp_path / "spool"
    first = make_client(server, spool_dir=spool)
    ids = [first.track("pause") for _ in range(5)]
    assert first.flush() is False
    assert first.stats().pending == 5
    assert first.stats().retries >= 1
    first.close()
    second = make_client(server, spool_dir=spool)
    ids += [second.track("seeking") for _ in range(2)]
    assert second.flush() is False
    assert second.stats().pending == 7  # the first client's five, reloaded, and its own two
    server.start()
    wait_until(settled(second), message="the spooled events after the server came back")
    assert set(server.stored()) == set(ids)
    stats = second.stats()
    assert (stats.sent, stats.duplicates, stats.dropped) == (7, 0, 0)


KILLED_APP = textwrap.dedent(
    """
    import sys, time
    from reelout.client.telemetry import Backoff, TelemetryClient

    url, key, spool = sys.argv[1:4]
    client = TelemetryClient(url, key, spool_dir=spool, viewer_id="v", backoff=Backoff(0.05, 0.5))
    ids = [client.track("pause") for _ in range(4)]
    client.flush()
    print(" ".join(ids), flush=True)
    time.sleep(600)
    """
)


def test_a_killed_apps_events_go_with_the_next_client_on_its_spool(
    start_reelout: StartReelout, make_client: MakeClient, tmp_path: Path
) -> None:
    server = start_reelout()
    server.stop()
    spool = tmp_path / "spool"
    app = subprocess.Popen(
        [sys.executable, "-c", KILLED_APP, server.url, server.key, str(spool)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert app.stdout is not None
        ids = app.stdout.readline().split()
    finally:
        app.kill()  # SIGKILL: no close(), no atexit
        app.wait(timeout=30)
    assert len(ids) == 4
    server.start()
    after = make_client(server, spool_dir=spool)
    wait_until(lambda: after.stats().sent == 4, message="the killed app's events")
    assert set(server.stored()) == set(ids)


def test_a_resend_after_a_crash_is_stored_once_and_a_torn_line_skipped(
    start_reelout: StartReelout, make_client: MakeClient, tmp_path: Path
) -> None:
    server = start_reelout()
    server.stop()
    spool, crashed = tmp_path / "spool", tmp_path / "as-a-crash-left-it"
    first = make_client(server, spool_dir=spool)
    ids = [first.track("pause") for _ in range(3)]
    assert first.flush() is False
    shutil.copytree(spool, crashed)  # what a crash after the send, before the cleanup, leaves
    server.start()
    assert first.flush()
    first.close()
    (segment,) = crashed.glob("*.ndjson")
    with segment.open("ab") as torn:
        torn.write(b'{"event_id": "cut sho')  # a write the crash interrupted
    second = make_client(server, spool_dir=crashed)
    assert second.flush()
    stats = second.stats()
    assert (stats.sent, stats.duplicates, stats.dropped_invalid) == (0, 3, 1)
    assert set(server.stored()) == set(ids)


def test_a_spool_folder_in_use_leaves_the_second_client_in_memory(
    start_reelout: StartReelout, make_client: MakeClient, tmp_path: Path
) -> None:
    server = start_reelout()
    holder = make_client(server, spool_dir=tmp_path / "spool")
    assert holder.flush()  # its thread has the folder
    second = make_client(server, spool_dir=tmp_path / "spool")
    event_id = second.track("pause")
    assert second.flush()
    assert second.stats().errors == 1
    assert set(server.stored()) == {event_id}


def test_retry_after_is_honoured(start_reelout: StartReelout, make_client: MakeClient) -> None:
    """One request a second: the second batch gets 429 with Retry-After. A client that waited
    less (its own backoff here is 1 to 2 ms) would be refused again and again."""
    server = start_reelout(rate_limit_caller_per_second=1, rate_limit_caller_burst=1)
    client = make_client(server, batch_size=1, backoff=Backoff(first=0.002, most=0.002))
    ids = [client.track("pause"), client.track("seeking")]
    wait_until(
        lambda: client.stats().sent == 2, message="both batches, the second after its Retry-After"
    )
    assert set(server.stored()) == set(ids)
    stats = client.stats()
    assert (stats.sent, stats.retries, stats.batches) == (2, 1, 2)


def test_a_hung_server_blocks_neither_track_nor_close(make_client: MakeClient) -> None:
    """The server takes the connection and never answers: the client's thread waits on it, the
    app goes on tracking into the queue, and close() returns after its own timeout."""
    with socket.create_server(("127.0.0.1", 0)) as silent:
        server = Reelout(Path("unused"), {}, hold=silent, key="rlo_client_x")
        client = make_client(server, batch_size=10, timeout=60)
        for _ in range(10):
            client.track("pause")
        wait_until(
            lambda: client.stats().pending == 10 and client.stats().queued == 0,
            message="the thread to take the first batch and send it",
        )
        ids = [client.track("seeking") for _ in range(40)]
        assert all(ids)
        assert client.stats().queued == 40  # the thread is still waiting on the first batch
        client.close(timeout=0.2)
        assert client.stats().tracked == 50


# ---- bounds and bad input ---------------------------------------------------------------------------


def test_the_memory_bound_drops_the_oldest_and_counts_them(
    start_reelout: StartReelout, make_client: MakeClient
) -> None:
    server = start_reelout()
    server.stop()
    client = make_client(server, max_queue=3)  # no spool folder: memory only
    ids = [client.track("heartbeat", watch_ms=n) for n in range(10)]
    assert all(ids)
    assert client.flush() is False
    stats = client.stats()
    assert (stats.dropped_queue_full, stats.pending) == (7, 3)
    server.start()
    wait_until(delivered(server, ids[-3:]), message="the three newest events")


def test_the_spool_bound_drops_the_oldest_and_counts_them(
    start_reelout: StartReelout, make_client: MakeClient, tmp_path: Path
) -> None:
    server = start_reelout()
    server.stop()
    spool = tmp_path / "spool"
    client = make_client(server, spool_dir=spool, spool_max_bytes=2000)
    ids = [client.track("heartbeat", watch_ms=n) for n in range(30)]  # about 250 bytes each
    assert client.flush() is False
    stats = client.stats()
    assert stats.dropped_spool_full > 0
    assert stats.pending + stats.dropped_spool_full == 30
    on_disk = sum(path.stat().st_size for path in spool.glob("*.ndjson"))
    assert on_disk <= 2000 + 2000 // 8 + 300  # the bound, one segment more, one line over
    kept = stats.pending
    server.start()
    wait_until(delivered(server, ids[-kept:]), message="the newest events, the oldest dropped")


class Unprintable:
    pass


def test_track_never_raises_and_counts_what_it_cannot_send(
    start_reelout: StartReelout, make_client: MakeClient
) -> None:
    server = start_reelout()
    client = make_client(server)
    loop: dict[str, Any] = {}
    loop["self"] = loop
    dropped = [
        client.track("pause", thing=Unprintable()),
        client.track("pause", tags={"a", "b"}),
        client.track("pause", ratio=float("nan")),
        client.track("pause", nested=loop),
        client.track("pause", blob="x" * 20_000),  # over max_event_bytes (16 KiB)
    ]
    assert dropped == [None] * 5
    client.identify(flags=Unprintable())  # poisons nothing: events that carry it are dropped
    assert client.track("pause") is None
    client.identify(flags={"use_tus_upload": "on"})
    at, ref = datetime(2026, 12, 2, 10, 0, tzinfo=UTC), uuid.uuid4()
    kept = client.track("pause", client_time=at, view_id=ref)
    assert kept is not None
    assert client.flush()
    stats = client.stats()
    assert (stats.dropped_invalid, stats.errors, stats.sent, stats.tracked) == (6, 0, 1, 7)
    stored = server.stored()[kept]
    assert stored["view_id"] == str(ref)
    assert datetime.fromisoformat(stored["client_time"]) == at


# ---- the uploader's outcomes ---------------------------------------------------------------------


def test_uploads_are_reported_as_upload_events(
    start_reelout: StartReelout, make_client: MakeClient, make_source: MakeSource, tmp_path: Path
) -> None:
    server = start_reelout()
    client = make_client(server)
    uploads = UploadTelemetry(client, order_stage="inbound")
    source = make_source(size=300_000)
    results = upload(source.path, server=server.url, key=ADMIN_TOKEN, progress=uploads.progress)
    uploads.finished(results)
    refused = upload(source.path, server=server.url, key="rlo_admin_wrong", retries=0)
    missing = upload(tmp_path / "gone.mp4", server=server.url, key=ADMIN_TOKEN)
    uploads.finished(refused + missing)
    assert client.flush()
    events = server.stored().values()
    by_type = {event["type"]: event for event in events if event["type"] != "upload_failed"}
    assert sorted(by_type) == ["upload_completed", "upload_started"]
    started, completed = by_type["upload_started"], by_type["upload_completed"]
    assert started["upload_id"] == completed["upload_id"]
    assert (started["bytes"], started["method"]) == (source.size, "tus")
    assert (completed["bytes"], completed["method"], completed["attempts"]) == (
        source.size,
        "tus",
        1,
    )
    assert completed["order_stage"] == "inbound"
    failed = sorted(
        (e["error_class"], e["retryable"], e["upload_id"] != completed["upload_id"])
        for e in events
        if e["type"] == "upload_failed"
    )
    assert failed == [("http_401", False, True), ("local_file", False, True)]


def test_an_uploader_result_maps_to_its_event(tmp_path: Path) -> None:
    done = UploadResult(tmp_path / "a.mp4", size=10, ok=True, seconds=1.25, retries=2)
    assert upload_outcome(done) == (
        "upload_completed",
        {"method": "tus", "bytes": 10, "attempts": 3, "duration_ms": 1250},
    )
    busy = UploadResult(tmp_path / "a.mp4", size=10, status=503, error="HTTP 503")
    assert upload_outcome(busy)[1]["error_class"] == "http_503"
    assert upload_outcome(busy)[1]["retryable"] is True
    cut = UploadResult(tmp_path / "a.mp4", error="creating the upload failed: cannot reach")
    assert (upload_outcome(cut)[1]["error_class"], upload_outcome(cut)[1]["retryable"]) == (
        "transport",
        True,
    )
