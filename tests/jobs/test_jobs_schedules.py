"""Periodic schedules: one job per slot across racing workers, and sane behaviour on clock jumps."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete

from reelout.clock import ManualClock
from reelout.jobs import service
from reelout.jobs.models import Job, Schedule
from reelout.jobs.service import ensure_schedule, tick_schedules
from reelout.jobs.timing import next_slot_after
from reelout.runtime import Runtime

MINUTE = timedelta(minutes=1)


def _schedule(rt: Runtime, clock: ManualClock, interval: int = 60, name: str = "reaper") -> None:
    with rt.db.session() as session:
        ensure_schedule(session, clock, name, "uploads.reap", interval)


def _jobs(rt: Runtime) -> list[service.JobInfo]:
    with rt.db.session() as session:
        return service.list_jobs(session, limit=10_000)


def _next_run(rt: Runtime, name: str = "reaper") -> datetime:
    with rt.db.session() as session:
        (schedule,) = [s for s in service.list_schedules(session) if s.name == name]
    return schedule.next_run_at


def test_ensure_schedule_is_idempotent_and_updates_the_interval(
    rt: Runtime, clock: ManualClock
) -> None:
    t0 = clock.now()
    _schedule(rt, clock, 3600)
    clock.advance(10)
    _schedule(rt, clock, 3600)
    with rt.db.session() as session:
        assert service.list_schedules(session) == [
            service.ScheduleInfo("reaper", "uploads.reap", 3600, t0)
        ]
    assert tick_schedules(rt.db, clock) == 1
    assert _next_run(rt) == t0 + timedelta(hours=1)
    _schedule(rt, clock, 60)  # shorter: takes effect now, not an hour from now
    assert _next_run(rt) == clock.now() + MINUTE
    with rt.db.session() as session, pytest.raises(ValueError, match="interval"):
        ensure_schedule(session, clock, "reaper", "uploads.reap", 0)


def test_tick_fires_once_per_slot(rt: Runtime, clock: ManualClock) -> None:
    t0 = clock.now()
    _schedule(rt, clock)
    assert tick_schedules(rt.db, clock) == 1  # a new schedule runs right away
    assert tick_schedules(rt.db, clock) == 0
    clock.advance(59)
    assert tick_schedules(rt.db, clock) == 0
    clock.advance(1)
    assert tick_schedules(rt.db, clock) == 1
    assert tick_schedules(rt.db, clock) == 0
    jobs = _jobs(rt)
    assert [j.kind for j in jobs] == ["uploads.reap"] * 2
    assert [j.payload for j in jobs] == [
        {"schedule": "reaper", "slot": t0.isoformat()},
        {"schedule": "reaper", "slot": (t0 + MINUTE).isoformat()},
    ]
    assert jobs[1].dedupe_key == f"schedule:reaper:{(t0 + MINUTE).isoformat()}"


def test_clock_jump_forward_fires_once_not_per_missed_slot(rt: Runtime, clock: ManualClock) -> None:
    t0 = clock.now()
    _schedule(rt, clock)
    assert tick_schedules(rt.db, clock) == 1
    clock.advance(5 * 3600 + 30)  # 300 slots missed
    assert tick_schedules(rt.db, clock) == 1
    assert tick_schedules(rt.db, clock) == 0
    assert _next_run(rt) == t0 + 301 * MINUTE  # next grid slot strictly after now
    assert _jobs(rt)[-1].payload["slot"] == (t0 + 300 * MINUTE).isoformat()
    assert len(_jobs(rt)) == 2


def test_clock_jump_backwards_does_not_fire_again(rt: Runtime, clock: ManualClock) -> None:
    t0 = clock.now()
    _schedule(rt, clock)
    assert tick_schedules(rt.db, clock) == 1
    clock.set(t0 - timedelta(seconds=30))
    assert tick_schedules(rt.db, clock) == 0
    clock.set(t0 - timedelta(hours=2))
    for _ in range(3):
        assert tick_schedules(rt.db, clock) == 0
    assert _next_run(rt) == t0 + MINUTE  # never moves backwards: slot t0 cannot run twice
    clock.set(t0 + MINUTE - timedelta(microseconds=1))
    assert tick_schedules(rt.db, clock) == 0
    clock.advance(0.000001)
    assert tick_schedules(rt.db, clock) == 1
    assert tick_schedules(rt.db, clock) == 0
    assert [j.payload["slot"] for j in _jobs(rt)] == [t0.isoformat(), (t0 + MINUTE).isoformat()]


def test_two_workers_ticking_together_enqueue_one_job_per_slot(
    rt: Runtime, clock: ManualClock
) -> None:
    _schedule(rt, clock, name="a")
    _schedule(rt, clock, name="b")
    fired: list[int] = []
    lock = threading.Lock()

    def tick(barrier: threading.Barrier) -> None:
        barrier.wait()
        n = tick_schedules(rt.db, clock)
        with lock:
            fired.append(n)

    slots = 6
    for _slot in range(slots):
        barrier = threading.Barrier(4)
        threads = [threading.Thread(target=tick, args=(barrier,)) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        clock.advance(60)
    assert len(fired) == 4 * slots
    assert sum(fired) == 2 * slots
    keys = [j.dedupe_key for j in _jobs(rt)]
    assert len(keys) == len(set(keys)) == 2 * slots


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.integers(min_value=-7200, max_value=7200), min_size=1, max_size=12))
def test_any_clock_walk_fires_exactly_when_the_next_slot_is_reached(
    rt: Runtime, jumps: list[int]
) -> None:
    clock = ManualClock()
    with rt.db.session() as session:
        session.execute(delete(Job))
        session.execute(delete(Schedule))
    interval = timedelta(seconds=600)
    _schedule(rt, clock, 600)
    expected_next = clock.now()  # the model: a new schedule is due at once
    slots: list[str] = []
    for jump in jumps:
        clock.set(clock.now() + timedelta(seconds=jump))
        fired = tick_schedules(rt.db, clock)
        assert fired == (1 if clock.now() >= expected_next else 0)
        assert tick_schedules(rt.db, clock) == 0  # ticking again at the same instant: nothing
        if fired:
            expected_next = next_slot_after(expected_next, interval, clock.now())
            slots.append(_jobs(rt)[-1].payload["slot"])
        assert _next_run(rt) == expected_next > clock.now()
    assert slots == sorted(set(slots))  # every fired slot is new and later than the last
    assert len(_jobs(rt)) == len(slots)
