"""What the console's Rollouts pages show, read from a rollout and its log (pure, no I/O): the
stage timeline, each guardrail's interval against its margin over the logged decisions, the
latest per-metric table, the log in words and which commands the buttons offer."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from reelout.alerts.templates import spell_duration
from reelout.rollouts.history import entries_of_stages
from reelout.rollouts.plan import Guardrail, Plan
from reelout.rollouts.schemas import LogEntryOut, RolloutOut
from reelout.telemetry.metrics import METRICS

StageStatus = Literal["done", "current", "ahead"]
ChartKind = Literal["harm", "value"]
COMPARISON_TESTS = ("asymptotic_cs",)  # decide's comparison with the control
ABSOLUTE_TESTS = ("wilson", "normal")  # decide's kill switch on the treatment alone
# What the buttons send, in the order they stand (states.OPERATOR_COMMANDS).
MARKED = 200  # a chart marks each decision's estimate up to this many decisions
BUTTONS = ("start", "pause", "resume", "promote", "approve", "dismiss", "rollback", "abort")


# ---- the timeline ------------------------------------------------------------------------------


@dataclass(frozen=True)
class StageRow:
    """One stage of the plan on the timeline: what it asks for and when the rollout was in it."""

    index: int
    percent: int
    min_duration: str
    max_duration: str  # "" when the stage has none
    warmup: str
    min_units_per_arm: int
    monitor_only: bool
    status: StageStatus
    entered_at: datetime | None
    left_at: datetime | None
    approval: str  # "", "needed", "approved"


def timeline(rollout: RolloutOut, plan: Plan, commands: Iterable[LogEntryOut]) -> list[StageRow]:
    """Every stage in order: done, current (the rollout's stage once started) or ahead."""
    entered = entries_of_stages(commands)
    gated = set(plan.approvals.before_stage)
    rows = []
    for index, stage in enumerate(plan.stages):
        started = rollout.state != "pending"
        status: StageStatus = (
            "done"
            if index < rollout.stage
            else "current"
            if index == rollout.stage and started
            else "ahead"
        )
        left = entered.get(index + 1) or (rollout.ended_at if status == "current" else None)
        approval = ""
        if stage.percent in gated and index > 0:
            approval = "approved" if index in rollout.approvals else "needed"
        rows.append(
            StageRow(
                index=index,
                percent=stage.percent,
                min_duration=spell_duration(stage.min_duration),
                max_duration=spell_duration(stage.max_duration) if stage.max_duration else "",
                warmup=spell_duration(stage.warmup) if stage.warmup else "—",
                min_units_per_arm=stage.min_units_per_arm,
                monitor_only=stage.monitor_only,
                status=status,
                entered_at=entered.get(index),
                left_at=left,
                approval=approval,
            )
        )
    return rows


# ---- numbers in a metric's unit ----------------------------------------------------------------


@dataclass(frozen=True)
class Scale:
    """How a guardrail's numbers read: multiplied by `factor`, followed by `unit`."""

    factor: float
    unit: str


def scale(guardrail: Guardrail | None, metric: str, kind: ChartKind) -> Scale:
    """Percent metrics in percent (a difference in percentage points), a relative margin in
    percent of the control, anything else as the metric counts it."""
    relative = bool(guardrail and guardrail.vs_control and guardrail.vs_control.relative)
    if kind == "harm" and relative:
        return Scale(100.0, "% of the control")
    found = METRICS.get(metric)
    if found is not None and found.display == "percent":
        return Scale(100.0, " pp" if kind == "harm" else " %")
    return Scale(1.0, "")


def amount(value: float | None, how: Scale, signed: bool = False) -> str:
    if value is None:
        return "—"
    number = f"{value * how.factor:+.3g}" if signed else f"{value * how.factor:.3g}"
    return number + how.unit


def bounds(verdict: Mapping[str, Any]) -> tuple[float | None, float | None]:
    """(lower, upper) of a logged verdict's interval (None where it has none)."""
    interval = verdict.get("interval")
    if not isinstance(interval, list) or len(interval) != 2:
        return None, None
    return interval[0], interval[1]


def chart_kind(test: object) -> ChartKind | None:
    if test in COMPARISON_TESTS:
        return "harm"
    if test in ABSOLUTE_TESTS:
        return "value"
    return None


# ---- the latest decision -----------------------------------------------------------------------


@dataclass(frozen=True)
class MetricRow:
    """One guardrail of the latest decision (decide.decision_body's per_metric), in words."""

    metric: str
    role: str
    state: str
    test: str
    estimate: str
    interval: str
    threshold: str
    n_treatment: int
    n_control: int
    alpha: str
    message: str
    dismissed: str  # the dismissal's reason, or ""


def _guardrails(plan: Plan) -> dict[str, Guardrail]:
    return {g.metric: g for g in plan.guardrails}


def metric_rows(rollout: RolloutOut, plan: Plan) -> list[MetricRow]:
    """The latest decision's per-metric verdicts, in the plan's order."""
    decision = rollout.last_decision or {}
    per_metric = decision.get("per_metric") or {}
    guardrails, rows = _guardrails(plan), []
    for name, verdict in per_metric.items():
        kind = chart_kind(verdict.get("test")) or "value"
        how = scale(guardrails.get(name), name, kind)
        lower, upper = bounds(verdict)
        signed = kind == "harm"
        interval = (
            f"{amount(lower, how, signed)} to {amount(upper, how, signed)}"
            if lower is not None or upper is not None
            else "—"
        )
        alpha = verdict.get("alpha")
        rows.append(
            MetricRow(
                metric=name,
                role=str(verdict.get("role", "")),
                state=str(verdict.get("state", "")),
                test=str(verdict.get("test") or "—"),
                estimate=amount(verdict.get("estimate"), how, signed),
                interval=interval,
                threshold=amount(verdict.get("threshold"), how, signed),
                n_treatment=int(verdict.get("n_treatment") or 0),
                n_control=int(verdict.get("n_control") or 0),
                alpha="—" if alpha is None else f"{alpha:.3g}",
                message=str(verdict.get("message", "")),
                dismissed=rollout.dismissed.get(name, ""),
            )
        )
    order = {g.metric: i for i, g in enumerate(plan.guardrails)}
    return sorted(rows, key=lambda row: order.get(row.metric, len(order)))


def first_reason(decision: Mapping[str, Any] | None) -> str:
    reasons = (decision or {}).get("reasons") or []
    return str(reasons[0]) if reasons else ""


# ---- the charts --------------------------------------------------------------------------------


@dataclass(frozen=True)
class GuardrailChart:
    """One guardrail's interval over the logged decisions: a band from the lower to the upper
    bound, the estimate, and a horizontal line at the margin (or the absolute limit)."""

    metric: str
    kind: ChartKind
    title: str
    unit: str
    points: int  # decisions with an interval
    latest: str  # the last interval against the threshold, in words
    data: dict[str, Any]  # pages.js's `data-chart` JSON


def _point(
    entry: LogEntryOut, metric: str, kind: ChartKind
) -> tuple[int, float | None, float | None, float | None, float | None] | None:
    verdict = (entry.body.get("per_metric") or {}).get(metric)
    if not isinstance(verdict, Mapping) or chart_kind(verdict.get("test")) != kind:
        return None
    lower, upper = bounds(verdict)
    if lower is None and upper is None:
        return None
    x = int(entry.at.timestamp())
    return x, lower, upper, verdict.get("estimate"), verdict.get("threshold")


def guardrail_charts(plan: Plan, decisions: Sequence[LogEntryOut]) -> list[GuardrailChart]:
    """A chart per guardrail and kind of check (the comparison's harm against the margin, the
    kill switch's value against the limit) that has at least one logged interval; `decisions`
    oldest first."""
    charts = []
    for guardrail in plan.guardrails:
        for kind in ("harm", "value"):
            points = [p for e in decisions if (p := _point(e, guardrail.metric, kind))]
            if points:
                charts.append(_chart(guardrail, kind, points))
    return charts


def _chart(
    guardrail: Guardrail,
    kind: ChartKind,
    points: list[tuple[int, float | None, float | None, float | None, float | None]],
) -> GuardrailChart:
    how = scale(guardrail, guardrail.metric, kind)

    def scaled(value: float | None) -> float | None:
        return None if value is None else value * how.factor

    xs = [p[0] for p in points]
    columns = [[scaled(p[i]) for p in points] for i in (2, 1, 3, 4)]
    line = "margin" if kind == "harm" else "limit"
    what = "harm (treatment against control)" if kind == "harm" else "the treatment's value"
    series = [
        {"label": "upper bound", "color": "#7a9be6", "width": 1},
        {"label": "lower bound", "color": "#7a9be6", "width": 1},
        {"label": "estimate", "color": "#2454d6", "width": 2, "points": len(xs) <= MARKED},
        {"label": line, "color": "#c0392b", "width": 2, "dash": [6, 4]},
    ]
    _, lower, upper, _, threshold = points[-1]
    signed = kind == "harm"
    latest = (
        f"latest: {amount(lower, how, signed)} to {amount(upper, how, signed)} against "
        f"the {line} {amount(threshold, how, signed)}"
    )
    return GuardrailChart(
        metric=guardrail.metric,
        kind=kind,
        title=f"{guardrail.metric}: {what} against its {line}",
        unit=how.unit.strip() or "as the metric counts",
        points=len(points),
        latest=latest,
        data={"series": series, "x": xs, "ys": columns, "bands": [[0, 1]]},
    )


# ---- the log -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LogRow:
    entry: LogEntryOut
    summary: str  # the move it made, in words


def _where(position: object) -> str:
    if not isinstance(position, Mapping):
        return "?"
    stage = position.get("stage")
    shown = f" at stage {stage + 1}" if isinstance(stage, int) else ""
    return f"{position.get('state', '?')}{shown}"


def log_rows(entries: Iterable[LogEntryOut]) -> list[LogRow]:
    rows = []
    for entry in entries:
        parts = []
        if "from" in entry.body and "to" in entry.body:
            parts.append(f"{_where(entry.body['from'])} → {_where(entry.body['to'])}")
        if "stage" in entry.body and entry.kind == "decision":
            parts.append(f"decided at stage {int(entry.body['stage']) + 1}")
        if "flag_revision" in entry.body:
            parts.append(f"flag revision {entry.body['flag_revision']}")
        if "approved_stage" in entry.body:
            parts.append(f"approved stage {int(entry.body['approved_stage']) + 1}")
        if "metric" in entry.body:
            parts.append(f"dismissed {entry.body['metric']}")
        rows.append(LogRow(entry, "; ".join(parts)))
    return rows


# ---- the buttons -------------------------------------------------------------------------------


def offered(rollout: RolloutOut) -> dict[str, bool]:
    """Every button with whether the rollout's state allows its command now (states.allowed,
    as the service reports it)."""
    return {command: command in rollout.allowed for command in BUTTONS}
