"""A worker killed mid-encode leaves no ffmpeg behind and its retry starts in a fresh scratch
folder; a starting worker ends encodes a dead worker left; a full disk while encoding sends the
job back to the queue with backoff instead of failing the video."""

from __future__ import annotations

import json
import os
import resource
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil
import pytest

from reelout.clock import ManualClock
from reelout.jobs import service as jobs
from reelout.jobs.worker import Worker
from reelout.media import encode
from reelout.media import ffmpeg as ffmpeg_runner
from reelout.media.errors import OutOfSpace
from reelout.media.ffmpeg import RunLimits
from reelout.media.pipeline import check_written_whole, child_ledger, out_of_space_raised
from reelout.media.sandbox import Sandbox
from reelout.tasks import build_registry
from tests.media.clips import Clips, ffmpeg, picture, tone
from tests.media.test_pipeline import upload
from tests.support.commands import REELOUT, reelout_env
from tests.support.jobs import run_jobs
from tests.support.live import LiveServer, serving
from tests.support.settings import make_settings
from tests.support.waiting import wait_until

TOOLS = ffmpeg_runner.find_tools()
LEASE = 60.0  # the default job lease; the clock jumps past it for the retry


def gone(pid: int) -> bool:
    """Ended (a zombie waiting for a reaper counts: it runs no code and holds no files)."""
    try:
        return bool(psutil.Process(pid).status() == psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return True


def long_clip(folder: Path) -> Path:
    out = folder / "long.mp4"
    ffmpeg(*picture(640, 360, seconds=30), *tone(30), "-c:v", "libx264", "-preset",
           "ultrafast", "-c:a", "aac", str(out))  # fmt: skip
    return out


@pytest.fixture
def real_clock() -> ManualClock:
    """A manual clock at real time, so it agrees with the worker process's leases."""
    return ManualClock(datetime.now(UTC))


@pytest.fixture
def live(tmp_path: Path, real_clock: ManualClock) -> Iterator[LiveServer]:
    with serving(make_settings(tmp_path), real_clock) as server:
        yield server


def scratch_folders(live: LiveServer, uid: str) -> list[Path]:
    return sorted((live.runtime.settings.data_dir / "media" / uid).glob("work-*"))


def encoder_of(worker: psutil.Process) -> psutil.Process | None:
    for child in worker.children(recursive=True):
        try:
            if child.name() == "ffmpeg" and "hls" in child.cmdline():
                return child
        except psutil.NoSuchProcess:
            continue
    return None


def spawn_worker(live: LiveServer, log: Path) -> subprocess.Popen[bytes]:
    env = reelout_env(
        live.runtime.settings.data_dir, REELOUT_JOB_POLL_SECONDS="0.1", REELOUT_LOG_FORMAT="plain"
    )
    with log.open("ab") as out:
        return subprocess.Popen(
            [REELOUT, "worker", "--concurrency", "1"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def test_a_killed_worker_leaves_no_ffmpeg_and_the_retry_starts_fresh(
    live: LiveServer, real_clock: ManualClock, tmp_path: Path
) -> None:
    with live.client() as api:
        uid = upload(api, long_clip(tmp_path))
    log = tmp_path / "worker.log"
    proc = spawn_worker(live, log)
    encoder: psutil.Process | None = None
    try:
        parent = psutil.Process(proc.pid)
        found = wait_until(lambda: encoder_of(parent) or proc.poll() is not None, 60, "the encode")
        assert isinstance(found, psutil.Process), log.read_text()
        encoder = found
        (killed_scratch,) = scratch_folders(live, uid)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        wait_until(lambda: gone(encoder.pid), 30, "ffmpeg to die with its worker")
    finally:
        proc.kill()
        if encoder is not None and not gone(encoder.pid):
            os.killpg(encoder.pid, signal.SIGKILL)  # do not leave it running for other tests
    data = str(live.runtime.settings.data_dir)
    survivors = [
        p
        for p in psutil.process_iter(["name", "cmdline"])
        if p.info["name"] == "ffmpeg"
        and data in " ".join(p.info["cmdline"] or [])
        and not gone(p.pid)
    ]
    assert survivors == []

    real_clock.set(datetime.now(UTC) + timedelta(seconds=LEASE + 1))  # the dead lease runs out
    snapshots: list[set[str]] = []
    retry = threading.Thread(target=run_jobs, args=(live.runtime,))
    retry.start()
    while retry.is_alive():
        snapshots.append({p.name for p in scratch_folders(live, uid)})
        time.sleep(0.02)
    retry.join()
    with live.client() as api:
        assert api.get(f"/api/v1/videos/{uid}").json()["status"]["state"] == "ready"
    fresh = [names for names in snapshots if names - {killed_scratch.name}]
    assert fresh, "the retry worked in a folder of its own"
    assert all(killed_scratch.name not in names for names in fresh), "the old one went first"
    assert not killed_scratch.exists() and scratch_folders(live, uid) == []


def test_a_starting_worker_ends_the_encodes_a_dead_worker_left(live: LiveServer) -> None:
    ledger = child_ledger(live.runtime.settings)
    ledger.folder.mkdir(parents=True, exist_ok=True)
    dead = subprocess.Popen(["true"])
    dead.wait()
    orphan = subprocess.Popen(["sleep", "300"], start_new_session=True)
    mine = subprocess.Popen(["sleep", "300"], start_new_session=True)
    host = socket.gethostname()
    me = psutil.Process()
    for owner, owner_started, child in [
        (dead.pid, 1.0, orphan),  # its worker is gone
        (me.pid, me.create_time(), mine),  # its worker (this process) is alive
    ]:
        record = {
            "host": host,
            "owner": owner,
            "owner_started": owner_started,
            "pid": child.pid,
            "started": psutil.Process(child.pid).create_time(),
        }
        (ledger.folder / f"{host}-{owner}-{child.pid}.json").write_text(json.dumps(record))
    try:
        Worker(live.runtime, build_registry(), worker_id="starting").start_up()
        assert orphan.wait(10) == -signal.SIGKILL
        assert mine.poll() is None, "a live worker's encode is left alone"
        left = sorted(p.name for p in ledger.folder.iterdir())
        assert left == [f"{host}-{me.pid}-{mine.pid}.json"]
    finally:
        for child in (orphan, mine):
            child.kill()
            child.wait()


# --- a full disk -------------------------------------------------------------------------------


def test_a_full_disk_while_encoding_is_retried_not_blamed_on_the_video(
    tmp_path: Path, clips: Clips
) -> None:
    clock = ManualClock()
    with serving(make_settings(tmp_path, media_ffmpeg_max_file_bytes=20_000), clock) as live:
        rt = live.runtime
        with live.client() as api:
            uid = upload(api, clips("p540"))
            run_jobs(live.runtime)
            with rt.db.read() as session:
                (job,) = [
                    j
                    for j in jobs.list_jobs(session, kind="media.process")
                    if j.payload["uid"] == uid
                ]
            assert (job.state, job.attempts) == ("queued", 1)
            assert job.run_at > clock.now(), "back to the queue with a backoff"
            assert job.last_error is not None and job.last_error.startswith("OutOfSpace: ")
            status = api.get(f"/api/v1/videos/{uid}").json()["status"]
            assert (status["state"], status["error_code"]) == ("queued", None)
            assert status["error_text"].startswith("waiting for disk space to retry: ")
            assert scratch_folders(live, uid) == []

            rt.settings.media_ffmpeg_max_file_bytes = None  # space is back
            clock.advance(3600)
            run_jobs(live.runtime)
            assert api.get(f"/api/v1/videos/{uid}").json()["status"]["state"] == "ready"
            changes = api.get(f"/api/v1/videos/{uid}/history").json()["changes"]
    steps = [(c["from_state"], c["to_state"], c["attempt"]) for c in changes[2:]]
    assert steps == [
        ("queued", "processing", 1),
        ("processing", "queued", 1),
        ("queued", "processing", 2),
        ("processing", "ready", 2),
    ]
    assert changes[3]["reason"].startswith("waiting for disk space to retry: ")
    assert changes[3]["error_code"] is None


def test_a_disk_full_on_every_attempt_ends_in_err_no_space(tmp_path: Path, clips: Clips) -> None:
    clock = ManualClock()
    with (
        serving(make_settings(tmp_path, media_ffmpeg_max_file_bytes=20_000), clock) as live,
        live.client() as api,
    ):
        uid = upload(api, clips("tiny"))
        for _ in range(3):
            run_jobs(live.runtime)
            clock.advance(3600)
        status = api.get(f"/api/v1/videos/{uid}").json()["status"]
        last = api.get(f"/api/v1/videos/{uid}/history").json()["changes"][-1]
    assert (status["state"], status["error_code"]) == ("error", "ERR_NO_SPACE")
    assert (last["from_state"], last["to_state"], last["attempt"]) == ("queued", "error", 3)
    assert (last["error_code"], last["reason"]) == ("ERR_NO_SPACE", status["error_text"])
    assert (
        "disk was full" in status["error_text"] and "written only in part" in status["error_text"]
    )


def test_ffmpeg_reporting_a_failed_write_is_out_of_space_even_when_it_exits_0(
    tmp_path: Path, clips: Clips
) -> None:
    """ffmpeg 5 exits 0 when only its trailer could not be written; the remux is one such."""
    source = clips("tiny")
    args = encode.mp4_command(TOOLS.ffmpeg, source, tmp_path / "video.mp4")
    full = Sandbox(reads=(source,), writes=(tmp_path,), max_file_bytes=20_000)
    with pytest.raises(OutOfSpace):
        ffmpeg_runner.run(args, RunLimits(timeout=60, sandbox=full))
    limits = RunLimits(timeout=60, sandbox=Sandbox(reads=(source,), writes=(tmp_path,)))
    ffmpeg_runner.run(args, limits)  # with room, the same command works
    check_written_whole(tmp_path / "video.mp4")


def test_a_file_cut_short_is_told_from_a_whole_one(clips: Clips, tmp_path: Path) -> None:
    whole = clips("tiny")
    check_written_whole(whole)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[:20_000])
    with pytest.raises(OutOfSpace):
        check_written_whole(cut)


def test_our_own_write_failing_for_want_of_space_is_out_of_space(tmp_path: Path) -> None:
    """A real write past RLIMIT_FSIZE (EFBIG, as a full disk gives ENOSPC); Python ignores
    SIGXFSZ, so the write fails instead of killing the process."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (10_000, hard))
    try:
        with pytest.raises(OutOfSpace, match="the disk is full"), out_of_space_raised():
            (tmp_path / "top.frag.mp4").write_bytes(bytes(20_000))
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    with pytest.raises(FileNotFoundError), out_of_space_raised():  # other errors pass through
        (tmp_path / "missing" / "x").write_bytes(b"x")
