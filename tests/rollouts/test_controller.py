"""The controller's tick as `reelout serve` runs it (the `rollouts-tick` periodic job): a rollout
created and started over the API, real telemetry for both arms sent to the ingest and rolled up
by the jobs, and the tick deciding on it: a healthy stage advances and writes the next split, a
regression rolls back to the control, and a rollout that is not running is left alone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import event

from reelout.clock import ManualClock
from reelout.rollouts import controller
from tests.rollouts.conftest import API, ENV, FLAGS
from tests.rollouts.test_evidence import arm_of, send
from tests.support.jobs import run_jobs
from tests.support.live import LiveServer, StartLive
from tests.telemetry.conftest import client_key

FLAG = "use_tus_upload"
T0 = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
PLAN: dict[str, Any] = {
    "flag": FLAG,
    "environment": ENV,
    "treatment": "on",
    "control": {"variation": "off"},
    "stages": [
        {"percent": 10, "min_duration": "1h", "min_units_per_arm": 100},
        {"percent": 50, "min_duration": "1h"},
        {"percent": 100, "min_duration": "1h", "monitor_only": True},
    ],
    "guardrails": [
        {"metric": "error_rate", "role": "guardrail", "vs_control": {"margin_abs": 0}},
        {"metric": "upload_success_rate", "role": "critical", "vs_control": {"margin_abs": 0}},
    ],
}


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def live(live_servers: StartLive, clock: ManualClock) -> LiveServer:
    server = live_servers(clock=clock, telemetry_rollup_delay_seconds=0, seed_flags=False)
    with server.client() as admin:
        reply = admin.put(f"/api/v1/environments/{ENV}/flagset", json=FLAGS)
        assert reply.status_code in (200, 201), reply.text
    return server


def ok(reply: httpx.Response) -> Any:
    assert reply.status_code in (200, 201), reply.text
    return reply.json()


def started(live: LiveServer) -> int:
    with live.client() as api:
        rollout = ok(api.post(API, json=PLAN))
        ok(api.post(f"{API}/{rollout['id']}/start", json={}))
    return int(rollout["id"])


def rollout(live: LiveServer, rid: int) -> dict[str, Any]:
    with live.client() as api:
        found: dict[str, Any] = ok(api.get(f"{API}/{rid}"))
    return found


def served(live: LiveServer) -> dict[str, Any]:
    with live.client() as api:
        flag: dict[str, Any] = ok(api.get(f"/api/v1/environments/{ENV}/flags/{FLAG}"))
    return flag


def arms(live: LiveServer, rid: int) -> tuple[str, str]:
    """The (treatment, control) keys the rollout serves its arms as."""
    keys = rollout(live, rid)["served_as"]
    return keys["treatment"], keys["control"]


def test_a_healthy_stage_advances_and_writes_the_next_split(
    live: LiveServer, clock: ManualClock
) -> None:
    rid = started(live)
    key, (on, off) = client_key(live), arms(live, rid)
    assert (on, off) == (f"on~r{rid}", f"off~r{rid}")
    clock.set(T0 + timedelta(minutes=31))  # events arrive after they happen
    send(live, key, arm_of(on, 150, 3, T0 + timedelta(minutes=30), FLAG)
         + arm_of(off, 150, 3, T0 + timedelta(minutes=30), FLAG))  # fmt: skip
    clock.set(T0 + timedelta(minutes=50))
    run_jobs(live.runtime, tick=True)
    early = rollout(live, rid)
    assert (early["stage"], early["last_decision"]["decision"]) == (0, "hold")
    assert early["last_decision"]["reasons"][0].startswith("collecting")

    later = T0 + timedelta(minutes=55)  # traffic goes on (30 minutes of silence would hold)
    clock.set(later + timedelta(minutes=1))
    send(live, key, arm_of(on, 10, 0, later, FLAG) + arm_of(off, 10, 0, later, FLAG))
    clock.set(T0 + timedelta(minutes=61))
    run_jobs(live.runtime, tick=True)
    moved = rollout(live, rid)
    assert (moved["state"], moved["stage"], moved["percent"]) == ("running", 1, 50), moved[
        "last_decision"
    ]["reasons"]
    split = served(live)["targeting"]["fractional"]
    assert [bucket[1] for bucket in split[-3:]] == [50, 0, 50]


def test_a_regression_in_treatment_rolls_back_to_the_control(
    live: LiveServer, clock: ManualClock
) -> None:
    rid = started(live)
    key, (on, off) = client_key(live), arms(live, rid)
    at = T0 + timedelta(minutes=20)
    clock.set(at + timedelta(minutes=1))
    send(live, key, arm_of(on, 400, 120, at, FLAG) + arm_of(off, 400, 12, at, FLAG))
    clock.set(T0 + timedelta(minutes=30))
    run_jobs(live.runtime, tick=True)

    found = rollout(live, rid)
    assert found["state"] == "rolled_back"
    assert found["frozen_evidence"]["decision"]["decision"] == "rollback"
    assert found["frozen_evidence"]["decision"]["per_metric"]["error_rate"]["state"] == "fail"
    flag = served(live)
    assert flag["defaultVariant"] == "off" and not flag.get("targeting")
    assert flag["variants"] == {"on": True, "off": False}  # the rollout's own variants are gone


def test_only_running_rollouts_are_decided(live: LiveServer, clock: ManualClock) -> None:
    rid = started(live)
    with live.client() as api:
        ok(api.post(f"{API}/{rid}/pause", json={}))
    clock.set(T0 + timedelta(minutes=5))
    result = controller.tick(live.runtime.db, clock)
    assert result.decisions == {} and result.applied == 0
    assert rollout(live, rid)["last_decision"] is None


def test_a_tick_reads_the_watermark_the_alerts_and_the_arrivals_once_for_all_its_rollouts(
    live: LiveServer, clock: ManualClock
) -> None:
    started(live)
    other = {**PLAN, "flag": "other", "treatment": "b", "control": {"variation": "a"}}
    with live.client() as api:
        ok(api.post(f"{API}/{ok(api.post(API, json=other))['id']}/start", json={}))
    statements: list[str] = []

    def seen(*args: Any) -> None:
        statements.append(args[2])

    clock.set(T0 + timedelta(minutes=5))
    event.listen(live.runtime.db.engine, "before_cursor_execute", seen)
    try:
        result = controller.tick(live.runtime.db, clock)
    finally:
        event.remove(live.runtime.db.engine, "before_cursor_execute", seen)
    assert sum(result.decisions.values()) == 2
    assert len([s for s in statements if "FROM telemetry_cursor" in s]) == 1
    assert len([s for s in statements if "FROM alert_instances" in s]) == 1
    assert len([s for s in statements if "FROM telemetry_arrivals" in s]) == 1
