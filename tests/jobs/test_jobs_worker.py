"""The worker in-process: handlers, failures, heartbeats, graceful stop, the embedded worker."""

from __future__ import annotations

import sys
import threading
import types
from datetime import timedelta
from pathlib import Path

import anyio
import pytest
from sqlalchemy import update

from reelout import tasks
from reelout.clock import ManualClock
from reelout.jobs import service
from reelout.jobs.models import Job
from reelout.jobs.registry import JobCancelled, JobContext, Registry
from reelout.jobs.worker import EmbeddedWorker, Worker
from reelout.runtime import Runtime
from tests.jobs.jobs_support import RuntimeFactory, add_job, job
from tests.support.waiting import wait_until


def _registry() -> tuple[Registry, list[JobContext]]:
    registry, seen = Registry(), []

    @registry.handler("test.ok")
    def ok(ctx: JobContext) -> None:
        seen.append(ctx)

    @registry.handler("test.boom")
    def boom(ctx: JobContext) -> None:
        raise ValueError(f"bad payload {ctx.payload}")

    @registry.handler("test.cancel")
    def cancel(ctx: JobContext) -> None:
        raise JobCancelled("not now")

    return registry, seen


def test_run_once_runs_a_handler_and_completes(rt: Runtime, clock: ManualClock) -> None:
    registry, seen = _registry()
    worker = Worker(rt, registry, worker_id="w")
    assert worker.run_once() is False  # nothing queued
    job_id = add_job(rt, "test.ok", {"x": 1})
    assert worker.run_once() is True
    (ctx,) = seen
    assert (ctx.job_id, ctx.kind, ctx.payload, ctx.attempt, ctx.runtime) == (
        job_id,
        "test.ok",
        {"x": 1},
        1,
        rt,
    )
    assert not ctx.cancelled.is_set()
    info = job(rt, job_id)
    assert (info.state, info.lease_owner, info.finished_at) == ("done", "w/0", clock.now())


def test_a_raising_handler_is_retried_then_dead(rt: Runtime, clock: ManualClock) -> None:
    registry, _ = _registry()
    worker = Worker(rt, registry)
    job_id = add_job(rt, "test.boom", {"v": 2}, max_attempts=2)
    assert worker.run_once() is True
    info = job(rt, job_id)
    assert info.state == "queued" and info.run_at > clock.now()
    assert info.last_error is not None
    assert info.last_error.startswith("ValueError: bad payload {'v': 2}")
    assert "Traceback" in info.last_error
    assert worker.run_once() is False  # backing off
    clock.advance(3600)
    assert worker.run_once() is True
    assert job(rt, job_id).state == "dead"


def test_an_error_message_with_a_nul_byte_is_stored(rt: Runtime, clock: ManualClock) -> None:
    registry = Registry()

    @registry.handler("test.nul")
    def nul(ctx: JobContext) -> None:
        raise OSError("bad\x00name")

    job_id = add_job(rt, "test.nul", max_attempts=1)
    assert Worker(rt, registry).run_once() is True
    info = job(rt, job_id)
    assert info.state == "dead"
    assert info.last_error is not None and info.last_error.startswith("OSError: bad\\0name")


def test_worker_ids_must_fit_the_lease_owner_column(rt: Runtime) -> None:
    with pytest.raises(ValueError, match="worker_id"):
        Worker(rt, Registry(), worker_id="w" * 91)
    assert len(Worker(rt, Registry()).lease_owner(99)) <= 100


def test_unknown_kind_fails_with_a_clear_error(rt: Runtime, clock: ManualClock) -> None:
    registry, _ = _registry()
    job_id = add_job(rt, "nobody.handles.this", max_attempts=1)
    assert Worker(rt, registry).run_once() is True
    info = job(rt, job_id)
    assert info.state == "dead"
    assert info.last_error is not None
    assert "no handler registered for job kind 'nobody.handles.this'" in info.last_error
    assert "test.ok" in info.last_error  # says what this worker does know


def test_job_cancelled_gives_the_job_back(rt: Runtime, clock: ManualClock) -> None:
    registry, _ = _registry()
    job_id = add_job(rt, "test.cancel")
    assert Worker(rt, registry).run_once() is True
    info = job(rt, job_id)
    assert (info.state, info.attempts, info.lease_owner) == ("queued", 0, None)


def test_registry_rejects_duplicates() -> None:
    registry, _ = _registry()
    with pytest.raises(ValueError, match="already registered"):
        registry.handler("test.ok")(lambda ctx: None)
    registry.periodic("p", "test.ok", lambda s: 60)
    with pytest.raises(ValueError, match="already registered"):
        registry.periodic("p", "test.ok", lambda s: 60)
    assert registry.kinds == {"test.ok", "test.boom", "test.cancel"}
    assert registry.get("missing") is None


def test_run_once_ticks_periodic_schedules(rt: Runtime, clock: ManualClock) -> None:
    registry, seen = _registry()
    registry.periodic("every-reaper-interval", "test.ok", lambda s: s.reaper_interval_seconds)
    worker = Worker(rt, registry)
    assert worker.run_once() is True  # created the schedule, enqueued and ran the first slot
    assert worker.run_once() is False
    clock.advance(rt.settings.reaper_interval_seconds)
    assert worker.run_once() is True
    assert [ctx.payload["schedule"] for ctx in seen] == ["every-reaper-interval"] * 2


def test_the_heartbeat_thread_keeps_a_long_jobs_lease(
    new_runtime: RuntimeFactory, clock: ManualClock
) -> None:
    rt: Runtime = new_runtime(clock, job_lease_seconds=0.3)
    release, started = threading.Event(), threading.Event()
    registry = Registry()

    @registry.handler("test.long")
    def long(ctx: JobContext) -> None:
        started.set()
        release.wait(30)

    job_id = add_job(rt, "test.long")
    worker = Worker(rt, registry, heartbeat_every=0.02)
    runner = threading.Thread(target=worker.run_once)
    runner.start()
    assert started.wait(10)
    for _ in range(5):  # 5 x 0.2 s of clock time: more than three 0.3 s leases
        clock.advance(0.2)
        wait_until(
            lambda: (
                (job(rt, job_id).lease_expires_at or clock.now()) - clock.now()
                > timedelta(seconds=0.2)
            ),
            message="a heartbeat after the clock moved",
        )
        assert service.claim(rt.db, clock, "rival", 0.3) is None
    release.set()
    runner.join(10)
    info = job(rt, job_id)
    assert (info.state, info.attempts) == ("done", 1)


def _steal_lease(rt: Runtime, job_id: int, owner: str) -> None:
    """What a rival's claim after expiry leaves in the row, written directly."""
    with rt.db.session() as session:
        session.execute(
            update(Job).where(Job.id == job_id).values(lease_owner=owner, attempts=Job.attempts + 1)
        )


def test_the_heartbeat_thread_notices_a_lost_lease_and_cancels(
    rt: Runtime, clock: ManualClock
) -> None:
    started, seen = threading.Event(), []
    registry = Registry()

    @registry.handler("test.slow")
    def slow(ctx: JobContext) -> None:
        started.set()
        seen.append(ctx.cancelled.wait(10))

    job_id = add_job(rt, "test.slow")
    runner = threading.Thread(target=Worker(rt, registry, heartbeat_every=0.02).run_once)
    runner.start()
    assert started.wait(10)
    _steal_lease(rt, job_id, "rival")
    runner.join(10)
    assert seen == [True]  # cancelled by the heartbeat thread, well before the 10 s wait ended
    info = job(rt, job_id)
    assert (info.state, info.lease_owner) == ("running", "rival")  # its "done" was not recorded


def test_a_stalled_worker_learns_from_ctx_heartbeat_and_records_nothing(
    rt: Runtime, clock: ManualClock
) -> None:
    started, go, seen = threading.Event(), threading.Event(), []
    registry = Registry()

    @registry.handler("test.stall")
    def stall(ctx: JobContext) -> None:
        started.set()
        go.wait(10)  # "stalled" with no background heartbeat (see heartbeat_every)
        seen.append((ctx.heartbeat(), ctx.cancelled.is_set()))
        with pytest.raises(JobCancelled):
            ctx.check_cancelled()

    job_id = add_job(rt, "test.stall")
    runner = threading.Thread(target=Worker(rt, registry, heartbeat_every=600).run_once)
    runner.start()
    assert started.wait(10)
    clock.advance(rt.settings.job_lease_seconds)
    rival = service.claim(rt.db, clock, "rival", 30)
    assert rival is not None and rival.id == job_id and rival.attempts == 2
    go.set()
    runner.join(10)
    assert seen == [(False, True)]
    info = job(rt, job_id)
    assert (info.state, info.lease_owner, info.attempts) == ("running", "rival", 2)


def _loop_registry() -> tuple[Registry, threading.Event, threading.Event]:
    registry, _ = _registry()
    started, unblock = threading.Event(), threading.Event()

    @registry.handler("test.polite")
    def polite(ctx: JobContext) -> None:
        started.set()
        if ctx.cancelled.wait(10):
            raise JobCancelled("worker stopping")

    @registry.handler("test.stubborn")
    def stubborn(ctx: JobContext) -> None:
        started.set()
        unblock.wait(10)  # ignores ctx.cancelled

    return registry, started, unblock


def _all_done(rt: Runtime, kind: str, n: int) -> bool:
    with rt.db.session() as session:
        jobs = service.list_jobs(session, kind=kind, limit=1000)
    return len(jobs) == n and all(j.state == "done" for j in jobs)


def test_run_forever_drains_with_threads_and_gives_back_on_stop(
    rt: Runtime, clock: ManualClock
) -> None:
    registry, started, _ = _loop_registry()
    worker = Worker(rt, registry, concurrency=3, poll_seconds=0.01)
    stop = threading.Event()
    loop = threading.Thread(target=worker.run_forever, args=(stop,))
    loop.start()
    for i in range(30):
        add_job(rt, "test.ok", {"i": i})
    wait_until(lambda: _all_done(rt, "test.ok", 30), message="30 jobs done")
    polite = add_job(rt, "test.polite")
    assert started.wait(10)
    stop.set()
    loop.join(10)
    assert not loop.is_alive()
    info = job(rt, polite)
    assert (info.state, info.attempts, info.lease_owner) == ("queued", 0, None)
    with rt.db.session() as session:
        owners = {j.lease_owner for j in service.list_jobs(session, kind="test.ok", limit=100)}
    assert owners <= {worker.lease_owner(slot) for slot in range(3)}


def test_a_job_that_ignores_stop_is_given_back_after_the_grace_period(
    rt: Runtime, clock: ManualClock
) -> None:
    registry, started, unblock = _loop_registry()
    worker = Worker(rt, registry, concurrency=1, poll_seconds=0.01, stop_grace_seconds=0.1)
    stop = threading.Event()
    before = set(threading.enumerate())
    loop = threading.Thread(target=worker.run_forever, args=(stop,))
    loop.start()
    stubborn = add_job(rt, "test.stubborn")
    assert started.wait(10)
    stop.set()
    loop.join(10)
    assert not loop.is_alive()
    assert job(rt, stubborn).state == "queued"  # back in the queue for another worker
    new_threads = set(threading.enumerate()) - before
    (abandoned,) = [t for t in new_threads if t.name == "reelout-worker-0" and t.is_alive()]
    unblock.set()  # the abandoned handler finally returns; its completion must not count
    abandoned.join(10)
    assert not abandoned.is_alive()
    info = job(rt, stubborn)
    assert (info.state, info.attempts, info.lease_owner) == ("queued", 0, None)


def test_embedded_worker_starts_and_stops_from_async_code(rt: Runtime, clock: ManualClock) -> None:
    registry, _, _ = _loop_registry()
    registry.periodic("embedded-tick", "test.ok", lambda s: 3600)
    embedded = EmbeddedWorker(rt, registry, concurrency=2)

    async def lifespan() -> None:
        await embedded.start()
        with rt.db.session() as session:  # schedules exist as soon as start() returns
            assert [s.name for s in service.list_schedules(session)] == ["embedded-tick"]
        for i in range(5):
            add_job(rt, "test.ok", {"i": i})
        # 5 enqueued + the schedule's first slot, all run by the worker threads
        await anyio.to_thread.run_sync(lambda: wait_until(lambda: _all_done(rt, "test.ok", 6)))
        thread = embedded._thread
        assert thread is not None and thread.is_alive()
        await embedded.stop()
        assert not thread.is_alive()
        await embedded.stop()  # idempotent

    before = {t for t in threading.enumerate() if t.name.startswith("reelout-")}
    anyio.run(lifespan)
    started = {t for t in threading.enumerate() if t.name.startswith("reelout-")} - before
    assert not [t.name for t in started if t.is_alive()], "a worker thread outlived stop()"
    late = add_job(rt, "test.ok")
    assert job(rt, late).state == "queued"  # stopped means stopped: nothing is left to run it


def test_build_registry_registers_domain_modules_and_skips_missing_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = types.ModuleType("reelout_test_fake_jobs")

    def register(registry: Registry) -> None:
        registry.handler("fake.kind")(lambda ctx: None)

    fake.register = register  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "reelout_test_fake_jobs", fake)
    monkeypatch.setattr(
        tasks, "DOMAIN_JOB_MODULES", ("reelout_test_fake_jobs", "reelout_test_absent_jobs")
    )
    assert tasks.build_registry().kinds == {"fake.kind"}


def test_build_registry_does_not_hide_broken_imports_inside_a_module(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "reelout_test_broken_jobs.py").write_text("import reelout_no_such_dependency\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(tasks, "DOMAIN_JOB_MODULES", ("reelout_test_broken_jobs",))
    with pytest.raises(ModuleNotFoundError, match="reelout_no_such_dependency"):
        tasks.build_registry()


def test_the_real_registry_builds() -> None:
    registry = tasks.build_registry()
    assert isinstance(registry, Registry)
    for periodic in registry.periodics:
        assert registry.get(periodic.kind) is not None, f"{periodic.name} has no handler"


def test_a_limited_kind_runs_one_at_a_time_while_other_kinds_keep_flowing(rt: Runtime) -> None:
    registry = Registry()
    running: list[str] = []
    release = threading.Event()
    lock = threading.Lock()
    most_at_once = [0]

    @registry.handler("test.encode")
    def encode(ctx: JobContext) -> None:
        with lock:
            running.append("encode")
            most_at_once[0] = max(most_at_once[0], running.count("encode"))
        release.wait(10)
        with lock:
            running.remove("encode")

    @registry.handler("test.quick")
    def quick(ctx: JobContext) -> None:
        pass

    registry.limit("test.encode", lambda settings: 1)
    encodes = [add_job(rt, "test.encode", {"n": n}) for n in range(2)]
    worker = Worker(rt, registry, worker_id="limited", concurrency=3, poll_seconds=0.02)
    stop = threading.Event()
    thread = threading.Thread(target=worker.run_forever, args=(stop,))
    thread.start()
    try:
        wait_until(lambda: running.count("encode") == 1, message="the first encode")
        quick_id = add_job(rt, "test.quick")
        wait_until(lambda: job(rt, quick_id).state == "done", message="a quick job beside it")
        assert [job(rt, j).state for j in encodes].count("queued") == 1, "the second one waits"
        release.set()
        wait_until(lambda: all(job(rt, j).state == "done" for j in encodes), message="both encodes")
    finally:
        release.set()
        stop.set()
        thread.join(10)
    assert most_at_once[0] == 1
