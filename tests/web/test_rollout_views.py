"""What the Rollouts page shows, directly: the timeline from the log's moves, numbers in each
guardrail's unit, the latest verdicts in the plan's order, the charts' points per kind of check
with gaps where a decision had no interval, and the buttons the state allows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from reelout.rollouts.decide import ArmData, Snapshot, decide, decision_body
from reelout.rollouts.plan import seed_template
from reelout.rollouts.schemas import LogEntryOut, RolloutOut
from reelout.rollouts.states import OPERATOR_COMMANDS, Position, State, allowed
from reelout.web import rollout_views as views
from tests.web.test_rollout_pages import rate

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
PLAN = seed_template("use_tus_upload", "production", "on", "off")


def rollout(state: str = "running", stage: int = 0, **fields: Any) -> RolloutOut:
    position = Position(State(state), stage, len(PLAN.stages))
    values: dict[str, Any] = {
        "id": 1, "flag": "use_tus_upload", "environment": "production",
        "plan": PLAN.model_dump(mode="json"), "state": state, "stage": stage,
        "percent": PLAN.stages[stage].percent, "stage_started_at": T0, "created_at": T0,
        "started_at": None if state == "pending" else T0, "ended_at": None,
        "created_by": "alice", "approvals": [], "dismissed": {}, "extended_until": None,
        "last_decision": None, "version": 1,
        "served_as": {"treatment": "on~r1", "control": "off~r1", "excluded": "off~excluded"},
        "allowed": [c.value for c in allowed(position) if c in OPERATOR_COMMANDS],
    }  # fmt: skip
    values.update(fields)
    unsaid = {name: None for name in RolloutOut.model_fields if name not in values}
    return RolloutOut.model_validate(values | unsaid)  # fields added later: none


def entry(
    n: int, what: str, body: dict[str, Any], kind: str = "command", minutes: int = 0
) -> LogEntryOut:
    return LogEntryOut(
        id=n, rollout_id=1, at=T0 + timedelta(minutes=minutes), kind=kind, who="alice",
        what=what, reason=None, body=body,
    )  # fmt: skip


def move(a: tuple[str, int], b: tuple[str, int]) -> dict[str, Any]:
    return {"from": {"state": a[0], "stage": a[1]}, "to": {"state": b[0], "stage": b[1]}}


LOG = [
    entry(1, "create", {"plan": {}}),
    entry(2, "start", move(("pending", 0), ("running", 0)), minutes=5),
    entry(3, "pause", move(("running", 0), ("paused", 0)), minutes=30),
    entry(4, "resume", move(("paused", 0), ("running", 0)), minutes=40),
    entry(5, "approve", {**move(("running", 0), ("running", 0)), "approved_stage": 3}, minutes=50),
    entry(6, "advance", move(("running", 0), ("running", 1)), minutes=90),
]


def test_the_timeline_reads_when_each_stage_was_entered_from_the_log() -> None:
    assert views.entries_of_stages(LOG) == {
        0: T0 + timedelta(minutes=5),
        1: T0 + timedelta(minutes=90),
    }  # a pause and a resume enter nothing
    rows = views.timeline(rollout(stage=1, approvals=[3]), PLAN, LOG)
    assert [row.status for row in rows] == ["done", "current", "ahead", "ahead"]
    assert rows[0].left_at == rows[1].entered_at == T0 + timedelta(minutes=90)
    assert rows[1].left_at is None and rows[2].entered_at is None
    assert [row.approval for row in rows] == ["", "", "", "approved"]
    assert (rows[0].min_duration, rows[0].max_duration, rows[0].warmup) == ("2d", "7d", "15m")
    assert rows[3].max_duration == "" and rows[3].monitor_only


def test_a_pending_rollout_has_no_current_stage_and_an_ended_one_leaves_its_last() -> None:
    pending = views.timeline(rollout("pending"), PLAN, LOG[:1])
    assert {row.status for row in pending} == {"ahead"}
    assert pending[3].approval == "needed"
    ended = T0 + timedelta(hours=3)
    over = views.timeline(rollout("rolled_back", stage=1, ended_at=ended), PLAN, LOG)
    assert over[1].status == "current" and over[1].left_at == ended


def test_numbers_read_in_the_guardrails_unit() -> None:
    guardrails = {g.metric: g for g in PLAN.guardrails}
    pp = views.scale(guardrails["error_rate"], "error_rate", "harm")
    assert views.amount(0.0025, pp, signed=True) == "+0.25 pp"
    percent = views.scale(guardrails["error_rate"], "error_rate", "value")
    assert views.amount(0.0213, percent) == "2.13 %"
    relative = views.scale(guardrails["rebuffer_percentage"], "rebuffer_percentage", "harm")
    assert views.amount(0.1, relative, signed=True) == "+10% of the control"
    log_ms = views.scale(guardrails["video_startup_log_ms"], "video_startup_log_ms", "harm")
    assert views.amount(0.05, log_ms, signed=True) == "+0.05"
    assert views.amount(None, pp) == "—"


def decided(treatment_errors: int, control_errors: int, n: int = 4000) -> dict[str, Any]:
    """The body of a real decision at stage 0 on error-rate evidence."""
    snapshot = Snapshot(
        now=T0 + timedelta(hours=1), stage=0, stage_started_at=T0,
        telemetry_watermark=T0 + timedelta(hours=1), last_exposure_at=T0 + timedelta(hours=1),
        treatment=ArmData(n, {"error_rate": rate(treatment_errors, n)}),
        control=ArmData(n, {"error_rate": rate(control_errors, n)}),
    )  # fmt: skip
    return decision_body(decide(PLAN, snapshot))


def test_the_latest_verdicts_come_in_the_plans_order_in_words() -> None:
    body = decided(90, 80)
    shuffled = dict(reversed(list(body["per_metric"].items())))
    rows = views.metric_rows(
        rollout(last_decision={**body, "per_metric": shuffled}, dismissed={"crash_rate": "known"}),
        PLAN,
    )
    assert [row.metric for row in rows] == [g.metric for g in PLAN.guardrails]
    error = rows[1]
    assert (error.metric, error.state, error.test) == (
        "error_rate",
        "inconclusive",
        "asymptotic_cs",
    )
    assert error.estimate == "+0.25 pp" and error.threshold == "+0 pp"
    assert error.interval.endswith(" pp") and " to " in error.interval
    assert (error.n_treatment, error.n_control) == (4000, 4000)
    assert error.alpha == "0.0102"  # Šidák over the five comparisons of the 10 % stage
    assert rows[3].dismissed == "known" and rows[3].interval == "—"
    assert views.first_reason(body).startswith("collecting:")
    assert views.metric_rows(rollout(), PLAN) == []


def test_a_chart_per_guardrail_and_kind_with_gaps_where_no_interval_was_logged() -> None:
    bodies = [decided(80, 80), decided(85, 80), decided(95, 80)]
    bodies[1]["per_metric"]["error_rate"]["interval"] = [None, None]  # e.g. insufficient
    decisions = [
        entry(10 + i, body["decision"], body, kind="decision", minutes=10 * i)
        for i, body in enumerate(bodies)
    ]
    charts = views.guardrail_charts(PLAN, decisions)
    assert [(c.metric, c.kind) for c in charts] == [("error_rate", "harm")]
    (chart,) = charts
    assert chart.points == 2
    xs = chart.data["x"]
    assert xs == [int(T0.timestamp()), int((T0 + timedelta(minutes=20)).timestamp())]
    upper, lower, estimate, margin = chart.data["ys"]
    assert margin == [0.0, 0.0] and estimate[0] == 0.0
    assert all(lo < up for lo, up in zip(lower, upper, strict=True))
    assert chart.latest.startswith("latest: ") and chart.latest.endswith("the margin +0 pp")

    absolute = decided(95, 80)
    verdict = absolute["per_metric"]["error_rate"]
    absolute["per_metric"]["error_rate"] = {**verdict, "test": "wilson", "threshold": 0.02}
    kinds = views.guardrail_charts(PLAN, [*decisions, entry(20, "hold", absolute, "decision")])
    assert [(c.metric, c.kind) for c in kinds] == [("error_rate", "harm"), ("error_rate", "value")]
    assert kinds[1].data["ys"][3] == [2.0]  # the limit, in percent


def test_the_log_says_what_each_entry_moved() -> None:
    rows = views.log_rows([*LOG, entry(7, "dismiss", {**move(("running", 1), ("running", 1)),
                                                      "metric": "crash_rate"})])  # fmt: skip
    summaries = [row.summary for row in rows]
    assert summaries[0] == ""
    assert summaries[1] == "pending at stage 1 → running at stage 1"
    assert summaries[4] == "running at stage 1 → running at stage 1; approved stage 4"
    assert summaries[6].endswith("dismissed crash_rate")


def test_the_buttons_offer_what_the_state_allows() -> None:
    assert {c for c, on in views.offered(rollout("pending")).items() if on} == {"start", "abort"}
    assert views.offered(rollout("paused"))["resume"] and not views.offered(rollout())["resume"]
    assert not any(views.offered(rollout("completed", stage=3)).values())
