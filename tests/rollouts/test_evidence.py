"""The evidence a rollout tick decides on, from real telemetry: events of two variants sent over
HTTP, rolled up by the jobs, read back per arm by `snapshot()` (cut at the analysis window and
at each metric's lag, exposures counted per viewer and variant), then decided on by `decide()`;
and the page alerts that veto a flag, fired by the real alert evaluation."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.orm import Session

from reelout.alerts.models import AlertInstance
from reelout.clock import ManualClock
from reelout.rollouts import evidence
from reelout.rollouts.decide import Snapshot, decide
from reelout.rollouts.plan import Plan, load_plan
from reelout.telemetry.sums import Sums
from tests.support.jobs import run_jobs
from tests.support.live import LiveServer, StartLive
from tests.telemetry.conftest import client_key

FLAG = "new-uploader"
T0 = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
PLAN = f"""
flag: {FLAG}
environment: production
treatment: "on"
control: {{variation: "off"}}
stages:
  - {{percent: 10, min_duration: 1h, max_duration: 6h, min_units_per_arm: 100}}
  - {{percent: 50, min_duration: 1h, warmup: 10m}}
  - {{percent: 75, min_duration: 1h, warmup: 5m}}
  - {{percent: 100, min_duration: 1h, monitor_only: true}}
guardrails:
  - {{metric: error_rate, role: guardrail, vs_control: {{margin_abs: 0}}}}
  - {{metric: upload_success_rate, role: critical, vs_control: {{margin_abs: 0}}}}
  - {{metric: complaint_rate, role: signal, vs_control: {{margin_abs: 0}}}}
"""


def plan(**changes: Any) -> Plan:
    found = load_plan(PLAN)
    return found.model_copy(update=changes) if changes else found


# ---- events as an app sends them ----------------------------------------------------------------


def _event(type_: str, viewer: str, at: datetime, **fields: Any) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "type": type_,
        "viewer_id": viewer,
        "client_time": at.isoformat(),
        **fields,
    }


def exposure(viewer: str, variant: str, at: datetime, flag: str = FLAG) -> dict[str, Any]:
    return _event("exposure", viewer, at, flag=flag, variant=variant)


def attempt(viewer: str, variant: str, ok: bool, at: datetime, flag: str = FLAG) -> dict[str, Any]:
    """One upload attempt that completed or failed, by a viewer served `variant`."""
    outcome: dict[str, Any] = (
        {"bytes": 50_000_000, "duration_ms": 60_000, "method": "tus"}
        if ok
        else {"error_class": "network", "retryable": True}
    )
    type_ = "upload_completed" if ok else "upload_failed"
    return _event(type_, viewer, at, upload_id=uuid.uuid4().hex, flags={flag: variant}, **outcome)


def complaint(viewer: str, variant: str, at: datetime) -> dict[str, Any]:
    return _event("complaint", viewer, at, kind="quality", flags={FLAG: variant})


def arm_of(
    variant: str, users: int, failures: int, at: datetime, flag: str = FLAG
) -> list[dict[str, Any]]:
    """`users` new viewers exposed to `variant` at `at`, each uploading once; `failures` fail."""
    out = []
    for i in range(users):
        viewer = f"{flag}-{variant}-{at:%H%M}-{i}"
        out += [
            exposure(viewer, variant, at, flag),
            attempt(viewer, variant, i >= failures, at, flag),
        ]
    return out


# ---- a live server --------------------------------------------------------------------------------


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


def started(live_servers: StartLive, clock: ManualClock, **settings: Any) -> tuple[LiveServer, str]:
    live = live_servers(clock=clock, telemetry_rollup_delay_seconds=0, **settings)
    return live, client_key(live)


def send(live: LiveServer, key: str, events: list[dict[str, Any]]) -> None:
    with live.client(token=key) as app:
        for start in range(0, len(events), 500):
            batch = events[start : start + 500]
            reply = app.post("/api/v1/telemetry/events", json=batch)
            assert reply.status_code == 200, reply.text
            assert reply.json()["accepted"] == len(batch), reply.text


def read(live: LiveServer, the_plan: Plan, now: datetime, **options: Any) -> Snapshot:
    since = options.pop("analysis_since", T0)
    with live.runtime.db.read() as session:
        return evidence.snapshot(
            session,
            the_plan,
            stage=options.pop("stage", 0),
            stage_started_at=options.pop("stage_started_at", T0),
            analysis_since=since,
            now=now,
            arms=options.pop("arms", ("on", "off")),
            **options,
        )


def fields(sums: Sums | None) -> tuple[float, float]:
    assert sums is not None
    return sums.n, sums.x


# ---- the arms' sums ------------------------------------------------------------------------------


def test_each_arm_gets_its_sums_cut_at_the_window_and_at_each_metrics_lag(
    live_servers: StartLive, clock: ManualClock, database_url: str
) -> None:
    """On SQLite and on PostgreSQL (the `database_url` fixture runs it on both)."""
    live, key = started(live_servers, clock, database_url=database_url)
    before = T0 - timedelta(minutes=10)
    events = arm_of("on", 5, 5, before)  # before the analysis window: left out
    events += arm_of("on", 40, 10, T0 + timedelta(minutes=10))
    events += arm_of("off", 40, 2, T0 + timedelta(minutes=10))
    events += [exposure(f"rest-{i}", "rest", T0 + timedelta(minutes=10)) for i in range(7)]
    # a viewer moved from control to treatment (a later stage): a unit of each arm
    events += [exposure("mover", "off", T0 + timedelta(minutes=10))]
    events += [exposure("mover", "on", T0 + timedelta(minutes=70))]
    # complaint_rate lags 60 min: a viewer first seen at +20 min counts, one at +90 min not yet
    events += [complaint("early", "on", T0 + timedelta(minutes=20))]
    events += [complaint("late", "on", T0 + timedelta(minutes=90))]
    clock.set(T0 + timedelta(hours=2))
    send(live, key, events)
    run_jobs(live.runtime, tick=True)

    now = clock.now()
    got = read(live, plan(), now)

    t, c = got.treatment, got.control
    assert (t.exposures, c.exposures) == (41, 41), "40 each, and the mover in both"
    assert fields(t.metrics["error_rate"]) == (40, 10)
    assert fields(c.metrics["error_rate"]) == (40, 2)
    assert fields(t.metrics["upload_success_rate"]) == (40, 30)
    assert fields(c.metrics["upload_success_rate"]) == (40, 38)
    assert fields(t.metrics["complaint_rate"]) == (41, 1), "40 uploaders and the early one"
    assert fields(c.metrics["complaint_rate"]) == (41, 0), "40 uploaders and the mover"
    assert got.last_exposure_at == T0 + timedelta(minutes=90), "the late complainer's minute"
    assert got.telemetry_watermark == now
    assert (got.stage, got.stage_started_at, got.now) == (0, T0, now)

    # the window starts later: the first 40 + 40 are out, the mover's treatment exposure stays
    later = read(live, plan(), now, analysis_since=T0 + timedelta(minutes=30))
    assert (later.treatment.exposures, later.control.exposures) == (1, 0)
    assert "error_rate" not in later.treatment.metrics
    # an hour later the late complaint is past its lag
    clock.advance(3600)
    run_jobs(live.runtime, tick=True)
    after = read(live, plan(), clock.now())
    assert fields(after.treatment.metrics["complaint_rate"]) == (43, 2), "and the mover at +70"
    live.runtime.db.dispose()


def test_a_window_shorter_than_a_lag_has_no_sums_for_that_metric(
    live_servers: StartLive, clock: ManualClock
) -> None:
    live, key = started(live_servers, clock)
    events = arm_of("on", 3, 0, T0 + timedelta(minutes=5)) + arm_of(
        "off", 3, 0, T0 + timedelta(minutes=5)
    )
    events += [complaint("early", "on", T0 + timedelta(minutes=6))]
    clock.set(T0 + timedelta(minutes=30))  # first: an event from the future counts as received
    send(live, key, events)
    run_jobs(live.runtime, tick=True)
    got = read(live, plan(), clock.now())
    assert "complaint_rate" not in got.treatment.metrics  # 30 min < its 60 min lag
    assert fields(got.treatment.metrics["error_rate"]) == (3, 0)
    assert got.last_exposure_at == T0 + timedelta(minutes=6)
    live.runtime.db.dispose()


def test_nothing_rolled_up_yet_is_no_watermark_and_no_exposure(
    live_servers: StartLive, clock: ManualClock
) -> None:
    live, _ = started(live_servers, clock)
    got = read(live, plan(), T0 + timedelta(minutes=5))
    assert got.telemetry_watermark is None and got.last_exposure_at is None
    assert got.treatment.exposures == got.control.exposures == 0
    assert dict(got.treatment.metrics) == {} == dict(got.control.metrics)
    assert decide(plan(), got).reasons[0].startswith("telemetry lag")
    live.runtime.db.dispose()


# ---- and the decision on them ----------------------------------------------------------------------


def test_a_clear_regression_in_treatment_rolls_back(
    live_servers: StartLive, clock: ManualClock
) -> None:
    live, key = started(live_servers, clock)
    at = T0 + timedelta(minutes=70)
    clock.set(T0 + timedelta(minutes=90))
    send(live, key, arm_of("on", 400, 120, at) + arm_of("off", 400, 12, at))
    run_jobs(live.runtime, tick=True)

    got = read(live, plan(), clock.now())
    decision = decide(plan(), got)

    assert decision.decision == "rollback", decision
    failed = {v.metric for v in decision.per_metric if v.state == "fail"}
    assert failed == {"error_rate", "upload_success_rate"}
    error_rate = next(v for v in decision.per_metric if v.metric == "error_rate")
    assert (error_rate.n_treatment, error_rate.n_control) == (400, 400)
    assert error_rate.estimate == pytest.approx(0.30 - 0.03)
    assert any('guardrail "error_rate" FAIL' in reason for reason in decision.reasons)
    live.runtime.db.dispose()


def test_equal_arms_advance_once_the_stage_has_run_its_course(
    live_servers: StartLive, clock: ManualClock
) -> None:
    live, key = started(live_servers, clock)
    at = T0 + timedelta(minutes=70)
    clock.set(T0 + timedelta(minutes=90))
    send(live, key, arm_of("on", 150, 5, at) + arm_of("off", 150, 5, at))
    run_jobs(live.runtime, tick=True)
    decision = decide(plan(), read(live, plan(), clock.now()))
    assert decision.decision == "advance", decision
    # the same evidence 45 minutes after the last exposure: no traffic
    clock.set(at + timedelta(minutes=45))
    run_jobs(live.runtime, tick=True)
    quiet = decide(plan(), read(live, plan(), clock.now()))
    assert quiet.decision == "hold" and quiet.reasons[0].startswith("no traffic"), quiet
    live.runtime.db.dispose()


def test_apps_that_stop_reporting_while_ofrep_still_serves_hold_on_their_lag(
    live_servers: StartLive, clock: ManualClock
) -> None:
    """The apps' events stop at 11:10 (another app's at 11:20), the server's exposure log goes
    on (an SDK's batch at 11:29): the rollups keep up, their watermark moves on, and the tick
    sees when the apps' own events carrying the flag last arrived."""
    live, key = started(live_servers, clock, exposure_flush_seconds=3600)
    clock.set(T0 + timedelta(minutes=70))
    send(live, key, arm_of("on", 150, 5, clock.now()) + arm_of("off", 150, 5, clock.now()))
    clock.set(T0 + timedelta(minutes=80))
    send(live, key, [attempt("elsewhere", "on", True, clock.now(), flag="another-flag")])
    clock.set(T0 + timedelta(minutes=89))
    served = [{"flag": FLAG, "variant": "on", "targetingKey": f"late-{i}"} for i in range(3)]
    with live.client(token=key) as app:
        assert app.post("/api/v1/exposures", json={"exposures": served}).status_code == 202
    live.app.state.exposures.flush()  # written as the server's exposure events
    clock.set(T0 + timedelta(minutes=90))
    run_jobs(live.runtime, tick=True)

    got = read(live, plan(), clock.now())
    assert got.client_events is not None
    assert got.client_events.with_flag == T0 + timedelta(minutes=70)
    assert got.client_events.anywhere == T0 + timedelta(minutes=80)
    with live.runtime.db.read() as session:  # a tick's one read for every rollout: the same
        targets = [(plan().environment, plan().flag), (plan().environment, "another-flag")]
        assert evidence.tick_reads(session, targets).client_events(plan()) == got.client_events
        assert evidence.tick_reads(session).client_events(plan()) is None  # not read: not known
    assert got.telemetry_watermark == clock.now()
    assert got.last_exposure_at == T0 + timedelta(minutes=89)
    assert decide(plan(), got).reasons == (
        f"telemetry lag: no client events carrying {FLAG} since 11:10 UTC (20m) while the flag"
        " is still being evaluated (last exposure 11:29 UTC); other client events still arrive"
        " in production (last 11:20 UTC); max_data_lag 10m",
    )
    live.runtime.db.dispose()


# ---- the analysis window ---------------------------------------------------------------------------


def test_the_analysis_runs_from_the_first_stage_with_the_same_arm_ratio() -> None:
    the_plan = plan()
    starts = [T0, T0 + timedelta(hours=2), T0 + timedelta(hours=4), T0 + timedelta(hours=6)]
    # 10% and 50% both split 1:1: one analysis from the first stage on, after its warmup (0)
    assert evidence.analysis_since(the_plan, 0, starts) == T0
    assert evidence.analysis_since(the_plan, 1, starts) == T0
    # 75% against 25%: a new ratio, a fresh start after its own warmup
    assert evidence.analysis_since(the_plan, 2, starts) == starts[2] + timedelta(minutes=5)
    # 100%, monitor only: no control
    assert evidence.analysis_since(the_plan, 3, starts) == starts[3]
    assert [s.shares for s in the_plan.stages] == [(10, 10), (50, 50), (75, 25), None]


# ---- page alerts -----------------------------------------------------------------------------------

WARNING_RULE = {
    "id": "error-rate-warning",
    "description": "A warning about the same rate: not a veto.",
    "signal": {
        "metric": "error_rate",
        "scope": {"environment": "*", "flag": "*", "variant": "*"},
        "window": "5m",
    },
    "condition": {"op": ">", "threshold": 0.05, "min_denominator": 10},
    "for": "0s",
    "severity": "warning",
}
PAGE_RULE = {**WARNING_RULE, "id": "error-rate-page", "severity": "page"}  # no pause_rollouts


def vetoes(live: LiveServer, the_plan: Plan) -> tuple[str, ...]:
    """The plan's vetoes, read alone; the same as a tick keeps from its one read of them all."""
    with live.runtime.db.read() as session:
        alone = evidence.page_alerts(session, the_plan)
        assert evidence.tick_reads(session).page_alerts(the_plan) == alone
        return alone


def test_a_firing_page_alert_about_the_flag_vetoes_it_and_pauses_the_rollout(
    live_servers: StartLive, clock: ManualClock
) -> None:
    """The seed's `error-rate-critical` (page, `pause_rollouts`, over 5 minutes, 200 actions at
    least) fires on real telemetry for the failing arm of each flag, and so does a page rule
    without that action; a warning on the same rate does not veto."""
    live, key = started(live_servers, clock)
    with live.client() as admin:
        for rule in (WARNING_RULE, PAGE_RULE):
            reply = admin.post("/api/v1/alerts/rules", json=rule)
            assert reply.status_code == 201, reply.text
    at = T0 + timedelta(minutes=1)
    events = arm_of("on", 250, 75, at) + arm_of("off", 250, 2, at)
    events += arm_of("on", 250, 75, at, flag="other-flag")
    send(live, key, events)
    assert vetoes(live, plan()) == ()
    for _ in range(2):
        clock.advance(60)
        run_jobs(live.runtime, tick=True)

    both = ("error-rate-critical", "error-rate-page")
    assert vetoes(live, plan()) == both
    assert vetoes(live, plan(flag="other-flag")) == both
    assert vetoes(live, plan(flag="quiet-flag")) == ()
    assert vetoes(live, plan(environment="staging")) == ()
    with live.runtime.db.read() as session:
        firing = _firing_rules(session)
    assert "error-rate-warning" in firing, "the warning fires too, and is no veto"

    got = read(live, plan(), clock.now(), page_alerts=vetoes(live, plan()))
    decision = decide(plan(), got)
    assert decision.decision == "pause"
    assert decision.reasons == (
        "alert veto: page alert error-rate-critical, error-rate-page firing",
    )
    live.runtime.db.dispose()


def _firing_rules(session: Session) -> set[str]:
    rows = session.query(AlertInstance).filter(AlertInstance.state == "firing")
    return {row.rule_id for row in rows}
