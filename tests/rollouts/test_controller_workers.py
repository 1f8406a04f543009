"""Two servers' controllers on one PostgreSQL database: two runtimes (each its own connection
pool and job worker, as two `reelout serve` processes have) race every slot of the
`rollouts-tick` schedule on one clock. Each slot gives each running rollout exactly one decision
in its log, and the one advance among them one flag write."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import pytest
from sqlalchemy import select

from reelout.clock import ManualClock
from reelout.jobs.models import Job
from reelout.jobs.worker import Worker
from reelout.rollouts import controller
from reelout.runtime import Runtime
from reelout.tasks import build_registry
from tests.conftest import reset_pg
from tests.rollouts.conftest import API, ENV, FLAGS
from tests.rollouts.test_controller import FLAG, T0, ok, started
from tests.rollouts.test_evidence import arm_of, send
from tests.support.live import LiveServer, StartLive
from tests.telemetry.conftest import client_key

pytestmark = pytest.mark.postgres
SLOT = timedelta(minutes=1)  # rollout_tick_seconds


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def servers(
    live_servers: StartLive, clock: ManualClock, pg_server_url: str
) -> tuple[LiveServer, LiveServer]:
    """Two servers (two data folders, two runtimes) on one fresh PostgreSQL database."""
    reset_pg(pg_server_url)
    settings: dict[str, Any] = {"database_url": pg_server_url, "telemetry_rollup_delay_seconds": 0,
                                "seed_flags": False, "rollout_tick_seconds": 60}  # fmt: skip
    first = live_servers("a", clock=clock, **settings)
    second = live_servers("b", clock=clock, **settings)
    with first.client() as admin:
        ok(admin.put(f"/api/v1/environments/{ENV}/flagset", json=FLAGS))
    return first, second


def together(*steps: Callable[[], object]) -> None:
    """Every step at once, each in its own thread, released by one barrier."""
    gate = threading.Barrier(len(steps))
    failures: list[BaseException] = []

    def run(step: Callable[[], object]) -> None:
        gate.wait()
        try:
            step()
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(step,)) for step in steps]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not failures, failures


def drain(worker: Worker[Runtime]) -> Callable[[], None]:
    """The worker ticking the schedules and running every job due, as `serve`'s does."""

    def run() -> None:
        while worker.run_once(tick=True):
            pass

    return run


def decisions(live: LiveServer, rid: int) -> list[dict[str, Any]]:
    with live.client() as api:
        page = ok(api.get(f"{API}/{rid}/log", params={"kind": "decision", "limit": 500}))
    found: list[dict[str, Any]] = page["entries"]
    return found


def controller_writes(live: LiveServer) -> list[dict[str, Any]]:
    """The flag's audit entries written by the controller (not the operator's start)."""
    with live.client() as api:
        page = ok(api.get("/api/v1/audit", params={"env": ENV, "flag": FLAG, "limit": 500}))
    return [e for e in page["entries"] if e["actor"] == "rollout-controller"]


def at(entry: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(entry["at"])


def test_two_servers_make_one_decision_per_rollout_per_slot(
    servers: tuple[LiveServer, LiveServer], clock: ManualClock
) -> None:
    first, second = servers
    registry = build_registry()
    workers = (Worker(first.runtime, registry, worker_id="a"),
               Worker(second.runtime, registry, worker_id="b"))  # fmt: skip
    rid = started(first)
    key, (on, off) = client_key(first), (f"on~r{rid}", f"off~r{rid}")  # the rollout's own keys
    clock.set(T0 + timedelta(minutes=31))  # events arrive after they happen
    send(second, key, arm_of(on, 150, 3, T0 + timedelta(minutes=30), FLAG)
         + arm_of(off, 150, 3, T0 + timedelta(minutes=30), FLAG))  # fmt: skip
    later = T0 + timedelta(minutes=55)  # traffic goes on (30 minutes of silence would hold)
    slots = [T0 + timedelta(minutes=m) for m in range(50, 64)]
    for slot in slots:
        clock.set(slot)
        if slot == later + timedelta(minutes=1):
            send(first, key, arm_of(on, 10, 0, later, FLAG) + arm_of(off, 10, 0, later, FLAG))
        together(*(drain(worker) for worker in workers))

    log = decisions(first, rid)
    per_slot = Counter(at(entry) for entry in log)
    assert per_slot == dict.fromkeys(slots, 1), per_slot
    assert [e["what"] for e in log].count("advance") == 1
    with first.runtime.db.read() as session:
        ticks = list(session.scalars(select(Job).where(Job.kind == controller.TICK_JOB)))
    assert sorted(datetime.fromisoformat(j.payload["slot"]) for j in ticks) == slots
    assert {j.state for j in ticks} == {"done"}
    assert {j.lease_owner.split("/")[0] for j in ticks if j.lease_owner} <= {"a", "b"}
    writes = controller_writes(first)
    assert len(writes) == 1, writes
    with first.client() as api:
        now = ok(api.get(f"{API}/{rid}"))
    assert (now["state"], now["stage"], now["percent"]) == ("running", 1, 50)


def test_the_same_slots_tick_run_by_both_servers_decides_once(
    servers: tuple[LiveServer, LiveServer], clock: ManualClock
) -> None:
    """A slot's tick job run twice (its lease lost mid-run and the job claimed again by the other
    server): the rollout still has one decision for that slot."""
    first, second = servers
    rid = started(first)
    slots = [T0 + timedelta(minutes=5), T0 + timedelta(minutes=6)]
    for slot in slots:
        clock.set(slot)
        runtimes = (first.runtime, second.runtime)
        together(*(partial(controller.tick, rt.db, rt.clock, slot=slot) for rt in runtimes))
        clock.set(slot + timedelta(seconds=30))  # the lease lost: run again, later in the slot
        again = controller.tick(second.runtime.db, clock, slot=slot)
        assert (again.decisions, again.applied) == ({"hold": 1}, 0), "decided, not logged"
    log = decisions(first, rid)
    assert Counter(at(entry) for entry in log) == dict.fromkeys(slots, 1), log
    assert [entry["body"]["slot"] for entry in log] == [s.isoformat() for s in slots]
    late = controller.tick(first.runtime.db, clock, slot=slots[0])  # an older slot's, late
    assert (late.decisions, late.applied) == ({"hold": 1}, 0)
    assert len(decisions(first, rid)) == 2 and controller_writes(first) == []
