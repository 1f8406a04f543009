"""A rollout's report (the seed's phase 5 "final report"): its plan and state, every stage's
dates, duration, units and decisions, the seed's KPI table treatment against control over the
rollout, the guardrails' latest verdicts, the frozen evidence of a rollback and the whole log.
One service under GET /api/v1/rollouts/{id}/report, the console's report page and
`reelout rollouts report`."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from reelout.context import Core
from reelout.rollouts import service
from reelout.rollouts.history import StageHistory, stage_histories
from reelout.rollouts.plan import Plan, stored_plan
from reelout.rollouts.schemas import (
    AnalysisWindow,
    LogEntryOut,
    RolloutOut,
    RolloutReportOut,
    StageReportOut,
)
from reelout.rollouts.states import FINAL, State
from reelout.telemetry import kpis

READ_CHUNK = 500  # log entries read per query
CHART_BUCKETS = 120  # a KPI chart's buckets over the window, at most (each a whole minute or more)
Series = dict[str, list[tuple[datetime, float | None]]]  # variant -> (bucket start, value)


@dataclass(frozen=True)
class Report:
    rollout: RolloutOut
    plan: Plan
    generated_at: datetime
    window: tuple[datetime, datetime] | None  # (first stage's start, end or now)
    stages: list[StageHistory]
    table: kpis.KpiTable | None  # None until the rollout starts
    guardrails: list[dict[str, Any]]
    frozen_evidence: dict[str, Any] | None
    log: list[LogEntryOut]  # oldest first
    series: dict[str, Series] = field(default_factory=dict)  # KPI -> per arm, when asked
    step: timedelta = timedelta(minutes=1)  # the series' bucket

    @property
    def final(self) -> bool:
        return State(self.rollout.state) in FINAL

    @property
    def decisions(self) -> dict[str, int]:
        counted: Counter[str] = Counter(e.what for e in self.log if e.kind == "decision")
        return dict(sorted(counted.items()))


def whole_log(session: Session, rollout_id: int) -> list[LogEntryOut]:
    """Every entry of the rollout's log, oldest first."""
    found: list[LogEntryOut] = []
    cursor = None
    while True:
        page = service.log_page(session, rollout_id, limit=READ_CHUNK, cursor=cursor)
        found += page.entries
        if not page.more:
            return found
        cursor = page.next_cursor


def latest_verdicts(rollout: RolloutOut, plan: Plan) -> list[dict[str, Any]]:
    """The last decision's per-metric verdicts, in the plan's order, each with its `metric` and
    the operator's dismissal reason (or None)."""
    per_metric = (rollout.last_decision or {}).get("per_metric") or {}
    order = {metric: i for i, metric in enumerate(plan.metrics)}
    rows = [
        {"metric": name, **verdict, "dismissed": rollout.dismissed.get(name)}
        for name, verdict in per_metric.items()
        if isinstance(verdict, Mapping)
    ]
    return sorted(rows, key=lambda row: order.get(row["metric"], len(order)))


def chart_step(window: timedelta) -> timedelta:
    """A bucket for KPI charts over `window`: whole minutes, at most CHART_BUCKETS of them."""
    minutes = -(-int(window.total_seconds()) // (60 * CHART_BUCKETS))  # rounded up
    return timedelta(minutes=max(1, minutes))


def kpi_series(
    core: Core, rollout: RolloutOut, table: kpis.KpiTable, step: timedelta
) -> dict[str, Series]:
    """Each KPI of the table that has units, over the table's window in `step`s, for the
    control and the treatment under the keys they were served as (not the excluded rest)."""
    arms = (rollout.served_as.control, rollout.served_as.treatment)
    found = {}
    for row in table.rows:
        if any(arm is not None and arm.n > 0 for arm in (row.control, row.treatment)):
            per_arm = kpis.series(
                core, rollout.environment, row.metric.name, rollout.flag,
                table.until - table.since, step, until=table.until,
            )  # fmt: skip
            found[row.metric.name] = {
                variant: points for variant, points in per_arm.items() if variant in arms
            }
    return found


def build(core: Core, rollout_id: int, *, charts: bool = False) -> Report:
    """The report of one rollout as it stands now (a running one's runs to now); with
    `charts`, each KPI with data per arm over the window too (for the pages)."""
    with core.db.read() as session:
        rollout = service.get(session, rollout_id)
        log = whole_log(session, rollout_id)
    plan = stored_plan(rollout.plan)
    now = core.clock.now()
    stages = stage_histories(plan.percents, log, rollout.ended_at, now)
    since = stages[0].entered_at or rollout.started_at
    window = (since, max(since, rollout.ended_at or now)) if since is not None else None
    table = None
    if window is not None:
        table = kpis.kpi_table(
            core,
            rollout.environment,
            window[1] - window[0],
            rollout.flag,
            rollout.served_as.control,
            rollout.served_as.treatment,
            until=window[1],
        )
    step = chart_step(window[1] - window[0]) if window else timedelta(minutes=1)
    series = kpi_series(core, rollout, table, step) if charts and table else {}
    return Report(
        rollout=rollout,
        plan=plan,
        generated_at=now,
        window=window,
        stages=stages,
        table=table,
        guardrails=latest_verdicts(rollout, plan),
        frozen_evidence=rollout.frozen_evidence,
        log=log,
        series=series,
        step=step,
    )


def _stage_out(stage: StageHistory) -> StageReportOut:
    units = None
    if stage.units_treatment is not None and stage.units_control is not None:
        units = {"treatment": stage.units_treatment, "control": stage.units_control}
    return StageReportOut(
        index=stage.index,
        percent=stage.percent,
        entered_at=stage.entered_at,
        left_at=stage.left_at,
        duration_seconds=stage.duration_seconds,
        units=units,
        decisions=stage.decisions,
    )


def report_body(report: Report) -> RolloutReportOut:
    """The report as the API answers it."""
    window = report.window
    return RolloutReportOut(
        rollout=report.rollout,
        generated_at=report.generated_at,
        final=report.final,
        window=AnalysisWindow(since=window[0], until=window[1]) if window else None,
        stages=[_stage_out(stage) for stage in report.stages],
        decisions=report.decisions,
        kpis=kpis.table_body(report.table) if report.table else None,
        guardrails=report.guardrails,
        frozen_evidence=report.frozen_evidence,
        log=report.log,
    )
