"""Real worker processes: a SIGKILLed worker loses no job, racing processes run each job once,
SIGTERM stops a worker cleanly and hands its running job back."""

from __future__ import annotations

import signal
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from reelout.clock import ManualClock
from reelout.jobs import service
from reelout.jobs.registry import JobContext, Registry
from reelout.jobs.worker import Worker
from reelout.runtime import Runtime
from tests.jobs.jobs_support import RuntimeFactory, add_job, job, logs, spawn_worker
from tests.support.waiting import wait_until

LEASE = 30.0  # clock-seconds; the survivor's ManualClock jumps past it


@pytest.fixture
def real_clock() -> ManualClock:
    """A manual clock that starts at real time, so it agrees with the worker processes."""
    return ManualClock(datetime.now(UTC))


@pytest.fixture
def prt(new_runtime: RuntimeFactory, real_clock: ManualClock) -> Runtime:
    runtime: Runtime = new_runtime(real_clock, job_lease_seconds=LEASE)
    return runtime


def _finish(proc: subprocess.Popen[bytes], out: Path, timeout: float = 60) -> int:
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError(f"worker process did not exit:\n{logs(out)}") from None


def test_a_killed_worker_loses_no_job(
    prt: Runtime, real_clock: ManualClock, database_url: str, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    job_id = add_job(prt, "test.sleep", {"video": "v1"})
    proc = spawn_worker("crash", database_url, tmp_path, out, lease=LEASE)
    try:
        wait_until(
            lambda: (out / f"started-{job_id}").exists() or proc.poll() is not None,
            timeout=60,
            message="the worker to start the job",
        )
        assert proc.poll() is None, logs(out)
        running = job(prt, job_id)
        assert running.state == "running" and running.attempts == 1
        assert running.lease_owner is not None and f":{proc.pid}:" in running.lease_owner
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    assert proc.returncode == -signal.SIGKILL

    registry, ran = Registry(), []

    @registry.handler("test.sleep")
    def quick(ctx: JobContext) -> None:
        ran.append((ctx.payload, ctx.attempt))

    survivor = Worker(prt, registry, worker_id="survivor")
    real_clock.set(datetime.now(UTC))
    assert survivor.run_once() is False  # the dead worker's lease has not run out yet
    real_clock.advance(LEASE + 1)
    assert survivor.run_once() is True
    assert ran == [({"video": "v1"}, 2)]
    done = job(prt, job_id)
    assert (done.state, done.attempts, done.lease_owner) == ("done", 2, "survivor/0")


def test_two_worker_processes_run_each_job_exactly_once(
    prt: Runtime, database_url: str, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    ids = [add_job(prt, "test.record", {"i": i}) for i in range(60)]
    procs = [spawn_worker("drain", database_url, tmp_path, out) for _ in range(2)]
    wait_until(lambda: len(list(out.glob("*.log"))) == 2)
    (out / "go").touch()
    for proc in procs:
        assert _finish(proc, out) == 0, logs(out)
    ran = [int(line) for path in out.glob("ran-*.txt") for line in path.read_text().split()]
    assert sorted(ran) == ids  # every job ran, and no job ran twice
    with prt.db.session() as session:
        jobs = service.list_jobs(session, limit=1000)
    assert {(j.state, j.attempts) for j in jobs} == {("done", 1)}


def test_sigterm_stops_a_worker_and_hands_its_job_back(
    prt: Runtime, database_url: str, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    quick = [add_job(prt, "test.quick") for _ in range(3)]
    waiting = add_job(prt, "test.wait", run_at=prt.clock.now() + timedelta(microseconds=1))
    proc = spawn_worker("serve", database_url, tmp_path, out, lease=LEASE)
    try:
        wait_until(
            lambda: (out / f"started-{waiting}").exists() or proc.poll() is not None,
            timeout=60,
            message="the worker to start the long job",
        )
        assert proc.poll() is None, logs(out)
        proc.send_signal(signal.SIGTERM)
        assert _finish(proc, out, timeout=20) == 0, logs(out)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert all(job(prt, i).state == "done" for i in quick)
    info = job(prt, waiting)
    assert (info.state, info.attempts, info.lease_owner) == ("queued", 0, None)
    assert "SIGTERM received, stopping" in logs(out)
