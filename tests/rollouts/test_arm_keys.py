"""A rollout of a flag whose control was everyone's before (the real case: the old path is the
flag's default): the same viewers, first served `off` for a day through OFREP, keep coming once
the rollout starts. Each arm is counted from the rollout's own first exposure (its arms are
served under keys of their own), so the arms are balanced and the stage advances, where reading
the plain `off` would count only the viewers new to it and hold on the sample ratio."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from reelout.clock import ManualClock
from reelout.rollouts import evidence
from reelout.rollouts.plan import stored_plan
from tests.rollouts.conftest import API, ENV, FLAGS
from tests.rollouts.test_evidence import attempt, send
from tests.support.jobs import run_jobs
from tests.support.live import LiveServer, StartLive
from tests.telemetry.conftest import client_key

FLAG = "use_tus_upload"
T0 = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
VIEWERS = [f"viewer-{n}" for n in range(600)]
PLAN: dict[str, Any] = {
    "flag": FLAG,
    "environment": ENV,
    "treatment": "on",
    "control": {"variation": "off"},
    "stages": [
        {"percent": 50, "min_duration": "1h", "min_units_per_arm": 200},
        {"percent": 100, "min_duration": "1h", "monitor_only": True},
    ],
    "guardrails": [
        {
            "metric": "upload_success_rate",
            "role": "critical",
            "vs_control": {"margin_abs": 0},
            "lag": "5m",
        },
    ],
}


def ok(reply: Any) -> Any:
    assert reply.status_code in (200, 201), reply.text
    return reply.json()


def serve_everyone(live: LiveServer, key: str) -> dict[str, str]:
    """viewer -> the variant OFREP served them (each evaluation is an exposure)."""
    got = {}
    with live.client(token=key) as app:
        for viewer in VIEWERS:
            body = {"context": {"targetingKey": viewer}}
            got[viewer] = ok(app.post(f"/ofrep/v1/evaluate/flags/{FLAG}", json=body))["variant"]
    live.app.state.exposures.flush()
    return got


def wait_for_the_split(live: LiveServer, key: str) -> None:
    """Until OFREP serves the rollout's split (its change feed is polled)."""
    deadline = time.monotonic() + 10
    with live.client(token=key) as app:
        while time.monotonic() < deadline:
            body = {"context": {"targetingKey": VIEWERS[0]}}  # served again later
            served = ok(app.post("/ofrep/v1/evaluate/flags/" + FLAG, json=body))
            if served["reason"] != "STATIC":
                return
            time.sleep(0.05)
    raise AssertionError("OFREP never served the rollout's split")


def test_viewers_served_the_control_before_the_rollout_count_in_its_control_arm(
    live_servers: StartLive,
) -> None:
    clock = ManualClock(T0)
    live = live_servers(
        clock=clock, telemetry_rollup_delay_seconds=0, seed_flags=False,
        flag_change_poll_seconds=0.05, exposure_flush_seconds=3600,
    )  # fmt: skip
    with live.client() as admin:
        ok(admin.put(f"/api/v1/environments/{ENV}/flagset", json=FLAGS))
    key = client_key(live)
    before = serve_everyone(live, key)  # a day of the old path: everyone is served `off`
    assert set(before.values()) == {"off"}
    clock.set(T0 + timedelta(hours=1))
    run_jobs(live.runtime, tick=True)

    start = T0 + timedelta(days=1)
    clock.set(start)
    with live.client() as api:
        rollout = ok(api.post(API, json=PLAN))
        ok(api.post(f"{API}/{rollout['id']}/start", json={}))
    wait_for_the_split(live, key)
    clock.set(start + timedelta(minutes=50))  # the same viewers come back
    served = serve_everyone(live, key)
    uploads = [attempt(v, served[v], n % 40 != 0, clock.now(), FLAG) for n, v in enumerate(VIEWERS)]
    send(live, key, uploads)
    clock.set(start + timedelta(minutes=61))
    run_jobs(live.runtime, tick=True)

    with live.client() as api:
        found = ok(api.get(f"{API}/{rollout['id']}"))
    treatment, control = found["served_as"]["treatment"], found["served_as"]["control"]
    assert (treatment, control) == (f"on~r{rollout['id']}", f"off~r{rollout['id']}")
    assert set(served.values()) == {treatment, control}
    with live.runtime.db.read() as session:
        read = evidence.snapshot(
            session, stored_plan(PLAN), stage=0, stage_started_at=start,
            analysis_since=start, now=clock.now(), arms=(treatment, control),
        )  # fmt: skip
    counted = (read.treatment.exposures, read.control.exposures)
    assert counted == (
        sum(v == treatment for v in served.values()),
        sum(v == control for v in served.values()),
    )
    assert min(counted) > 250, counted
    decision = found["last_decision"]
    assert (found["state"], found["stage"]) == ("running", 1), str(decision["per_metric"])
