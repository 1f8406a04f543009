"""The job queue on a real database: enqueue, claim, leases, retries, dead jobs, racing claimers."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from datetime import timedelta

import pytest

from reelout.clock import ManualClock
from reelout.jobs import service
from reelout.jobs.service import claim, complete, fail, heartbeat, release
from reelout.runtime import Runtime
from tests.jobs.jobs_support import add_job, job

LEASE = 30.0


def test_enqueue_claim_complete(rt: Runtime, clock: ManualClock) -> None:
    job_id = add_job(rt, "demo.echo", {"n": 1})
    queued = job(rt, job_id)
    assert (queued.state, queued.attempts, queued.run_at) == ("queued", 0, clock.now())

    claimed = claim(rt.db, clock, "w1", LEASE)
    assert claimed == service.ClaimedJob(job_id, "demo.echo", {"n": 1}, 1, 5)
    running = job(rt, job_id)
    assert running.state == "running"
    assert running.lease_owner == "w1"
    assert running.lease_expires_at == clock.now() + timedelta(seconds=LEASE)
    assert claim(rt.db, clock, "w2", LEASE) is None  # held, not expired

    clock.advance(3)
    assert complete(rt.db, clock, job_id, "w1") is True
    done = job(rt, job_id)
    assert (done.state, done.finished_at, done.lease_expires_at) == ("done", clock.now(), None)
    assert complete(rt.db, clock, job_id, "w1") is False  # only once
    assert claim(rt.db, clock, "w2", LEASE) is None


def test_claim_takes_the_oldest_due_job_and_honours_kinds(rt: Runtime, clock: ManualClock) -> None:
    later = add_job(rt, "a", run_at=clock.now() + timedelta(seconds=60))
    first = add_job(rt, "b", run_at=clock.now() - timedelta(seconds=10))
    second = add_job(rt, "a")
    assert claim(rt.db, clock, "w", LEASE, kinds=[]) is None
    got = claim(rt.db, clock, "w", LEASE, kinds={"a"})
    assert got is not None and got.id == second  # "b" is older but not wanted
    got = claim(rt.db, clock, "w", LEASE)
    assert got is not None and got.id == first
    assert complete(rt.db, clock, second, "w") and complete(rt.db, clock, first, "w")
    assert claim(rt.db, clock, "w", LEASE) is None  # `later` is not due yet
    clock.advance(60)
    got = claim(rt.db, clock, "w", LEASE)
    assert got is not None and got.id == later


def test_dedupe_key_returns_the_active_job(rt: Runtime, clock: ManualClock) -> None:
    first = add_job(rt, "media.process", {"uid": "v1"}, dedupe_key="process:v1")
    assert add_job(rt, "media.process", {"uid": "v1"}, dedupe_key="process:v1") == first
    claimed = claim(rt.db, clock, "w", LEASE)
    assert claimed is not None
    assert add_job(rt, "media.process", {"uid": "v1"}, dedupe_key="process:v1") == first  # running
    assert complete(rt.db, clock, first, "w")
    again = add_job(rt, "media.process", {"uid": "v1"}, dedupe_key="process:v1")
    assert again != first  # finished jobs free the key and keep their history
    assert job(rt, first).state == "done"
    assert job(rt, again).dedupe_key == "process:v1"
    with rt.db.session() as session:
        assert len(service.list_jobs(session, kind="media.process")) == 2


def test_enqueue_rejects_bad_arguments(rt: Runtime, clock: ManualClock) -> None:
    with rt.db.session() as session, pytest.raises(ValueError, match="kind"):
        service.enqueue(session, clock, "", {})
    with rt.db.session() as session, pytest.raises(ValueError, match="max_attempts"):
        service.enqueue(session, clock, "k", {}, max_attempts=0)
    with rt.db.session() as session:
        assert service.list_jobs(session) == []


def test_enqueue_is_part_of_the_callers_transaction(rt: Runtime, clock: ManualClock) -> None:
    def caller() -> None:
        with rt.db.session() as session:
            service.enqueue(session, clock, "k", {})
            raise RuntimeError("the caller's work failed")

    with pytest.raises(RuntimeError):
        caller()
    with rt.db.session() as session:
        assert service.list_jobs(session) == []


def test_failures_back_off_then_the_job_dies(rt: Runtime, clock: ManualClock) -> None:
    job_id = add_job(rt, "flaky", max_attempts=3)
    rng, expected_rng = random.Random(7), random.Random(7)
    for attempt in (1, 2):
        got = claim(rt.db, clock, "w", LEASE)
        assert got is not None and got.attempts == attempt
        assert (
            fail(
                rt.db,
                clock,
                job_id,
                "w",
                f"boom {attempt}",
                base_seconds=10,
                cap_seconds=15,
                rng=rng,
            )
            == "queued"
        )
        info = job(rt, job_id)
        ceiling = min(10 * 2 ** (attempt - 1), 15)
        delay = ceiling / 2 + ceiling / 2 * expected_rng.random()
        assert info.run_at == clock.now() + timedelta(seconds=delay)
        assert (info.state, info.lease_owner, info.last_error) == (
            "queued",
            None,
            f"boom {attempt}",
        )
        clock.advance(delay - 0.001)
        assert claim(rt.db, clock, "w", LEASE) is None  # still backing off
        clock.advance(0.001)
    got = claim(rt.db, clock, "w", LEASE)
    assert got is not None and got.attempts == 3
    assert fail(rt.db, clock, job_id, "w", "boom 3") == "dead"
    dead = job(rt, job_id)
    assert (dead.state, dead.attempts, dead.last_error) == ("dead", 3, "boom 3")
    assert dead.finished_at == clock.now()
    clock.advance(10**6)
    assert claim(rt.db, clock, "w", LEASE) is None


def test_expired_lease_is_reclaimed_and_the_old_worker_changes_nothing(
    rt: Runtime, clock: ManualClock
) -> None:
    job_id = add_job(rt, "long")
    assert claim(rt.db, clock, "dead-worker", LEASE) is not None  # ...and never heartbeats
    clock.advance(LEASE - 1)
    assert claim(rt.db, clock, "w2", LEASE) is None
    clock.advance(1)  # lease_expires_at <= now
    got = claim(rt.db, clock, "w2", LEASE)
    assert got is not None and got.id == job_id and got.attempts == 2

    before = job(rt, job_id)
    assert heartbeat(rt.db, clock, job_id, "dead-worker", LEASE) is False
    assert complete(rt.db, clock, job_id, "dead-worker") is False
    assert fail(rt.db, clock, job_id, "dead-worker", "late") is None
    assert release(rt.db, clock, job_id, "dead-worker") is False
    assert job(rt, job_id) == before  # nothing changed
    assert complete(rt.db, clock, job_id, "w2") is True


def test_a_job_that_keeps_killing_workers_ends_dead(rt: Runtime, clock: ManualClock) -> None:
    job_id = add_job(rt, "poison", max_attempts=2)
    for _ in range(2):
        assert claim(rt.db, clock, "doomed", LEASE) is not None
        clock.advance(LEASE)
    other = add_job(rt, "fine")
    got = claim(rt.db, clock, "w", LEASE)
    assert got is not None and got.id == other  # the poison job was buried on the way
    dead = job(rt, job_id)
    assert dead.state == "dead" and dead.attempts == 2
    assert dead.last_error is not None and "lost the lease" in dead.last_error


def test_heartbeat_keeps_the_lease(rt: Runtime, clock: ManualClock) -> None:
    job_id = add_job(rt, "long")
    assert claim(rt.db, clock, "w1", LEASE) is not None
    for _ in range(10):  # 10 x 20 s = far past one 30 s lease
        clock.advance(20)
        assert heartbeat(rt.db, clock, job_id, "w1", LEASE) is True
        assert claim(rt.db, clock, "w2", LEASE) is None
    assert job(rt, job_id).lease_expires_at == clock.now() + timedelta(seconds=LEASE)
    assert complete(rt.db, clock, job_id, "w1") is True
    assert job(rt, job_id).attempts == 1


def test_release_gives_the_job_back_untried(rt: Runtime, clock: ManualClock) -> None:
    job_id = add_job(rt, "k")
    assert claim(rt.db, clock, "w1", LEASE) is not None
    clock.advance(5)
    assert release(rt.db, clock, job_id, "w1") is True
    info = job(rt, job_id)
    assert (info.state, info.attempts, info.lease_owner, info.run_at) == (
        "queued",
        0,
        None,
        clock.now(),
    )
    got = claim(rt.db, clock, "w2", LEASE)
    assert got is not None and got.attempts == 1


def _race(n_threads: int, target: Callable[[int], None]) -> None:
    barrier = threading.Barrier(n_threads)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait()
            target(i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors


def _claim_race(rt: Runtime, clock: ManualClock, n_threads: int) -> list[str]:
    winners: list[str] = []
    lock = threading.Lock()

    def grab(i: int) -> None:
        if claim(rt.db, clock, f"w{i}", LEASE) is not None:
            with lock:
                winners.append(f"w{i}")

    _race(n_threads, grab)
    return winners


def test_racing_threads_claim_one_job_exactly_once(rt: Runtime, clock: ManualClock) -> None:
    for _round in range(5):
        job_id = add_job(rt, "contested")
        winners = _claim_race(rt, clock, 6)
        assert len(winners) == 1
        assert job(rt, job_id).lease_owner == winners[0]
        assert job(rt, job_id).attempts == 1
        assert complete(rt.db, clock, job_id, winners[0])


def test_racing_threads_drain_a_queue_without_duplicates(rt: Runtime, clock: ManualClock) -> None:
    ids = {add_job(rt, "bulk", {"i": i}) for i in range(60)}
    taken: list[int] = []
    lock = threading.Lock()

    def drain(i: int) -> None:
        while (got := claim(rt.db, clock, f"w{i}", LEASE)) is not None:
            with lock:
                taken.append(got.id)
            assert complete(rt.db, clock, got.id, f"w{i}")

    _race(6, drain)
    assert sorted(taken) == sorted(ids)  # every job once, none twice
    with rt.db.session() as session:
        assert {j.state for j in service.list_jobs(session, limit=1000)} == {"done"}


def test_racing_enqueues_with_one_dedupe_key_make_one_job(rt: Runtime, clock: ManualClock) -> None:
    ids: list[int] = []
    lock = threading.Lock()

    def put(_: int) -> None:
        job_id = add_job(rt, "once", dedupe_key="only-one")
        with lock:
            ids.append(job_id)

    _race(6, put)
    assert len(set(ids)) == 1
    with rt.db.session() as session:
        assert len(service.list_jobs(session)) == 1
