"""The console's rollout report: one rollout's `rollouts.report` as a linkable, printable page
(the stages, the seed's KPI table against its targets, the guardrails, their charts, the frozen
evidence and the log), and the same page as one self-contained HTML file for the CLI."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request, Response
from markupsafe import Markup

from reelout import __version__
from reelout.alerts.templates import spell_duration
from reelout.deps import SigningDep
from reelout.rollouts import report as reports
from reelout.rollouts.history import LogRun, StageHistory, folded
from reelout.rollouts.plan import Stage
from reelout.telemetry.metrics import METRICS
from reelout.web import rollout_views as views
from reelout.web.kpi_page import board_row, chart, has_data, served_labels, unit_of
from reelout.web.pages import (
    PREFIX,
    STATIC_DIR,
    VENDOR_DIR,
    ConsoleRoute,
    PageViewer,
    libraries,
    render,
    templates,
)

router = APIRouter(prefix=PREFIX, include_in_schema=False, route_class=ConsoleRoute)
SECTION = "rollouts"


@dataclass(frozen=True)
class StageLine:
    """One stage of the report's table, in words."""

    index: int
    percent: int
    planned: str  # what the plan asks of the stage
    entered: str
    left: str
    duration: str
    units: str
    decisions: str
    status: str  # "not entered", "ongoing", "done"


def _when(at: Any) -> str:
    return at.strftime("%Y-%m-%d %H:%M") if at else "—"


def planned(stage: Stage) -> str:
    parts = [f"min {spell_duration(stage.min_duration)}"]
    if stage.max_duration:
        parts.append(f"max {spell_duration(stage.max_duration)}")
    if stage.min_units_per_arm:
        parts.append(f"{stage.min_units_per_arm} units per arm")
    if stage.monitor_only:
        parts.append("monitor only")
    return ", ".join(parts)


def stage_line(stage: StageHistory, plan: Stage, final: bool) -> StageLine:
    if stage.entered_at is None:
        status = "not entered"
    elif stage.left_at is None:
        status = "ongoing"
    else:
        status = "done"
    duration = "—"
    if stage.duration_seconds is not None:
        duration = spell_duration(timedelta(seconds=int(stage.duration_seconds)))
        duration += " so far" if status == "ongoing" and not final else ""
    units = "—"
    if stage.units_treatment is not None:
        units = f"{stage.units_treatment} / {stage.units_control}"
    decisions = ", ".join(f"{kind} {count}" for kind, count in stage.decisions.items())
    return StageLine(
        index=stage.index,
        percent=stage.percent,
        planned=planned(plan),
        entered=_when(stage.entered_at),
        left=_when(stage.left_at),
        duration=duration,
        units=units,
        decisions=decisions or "—",
        status=status,
    )


@dataclass(frozen=True)
class LogLine:
    """One line of the printed log: an entry, or a run of the same decision."""

    run: LogRun
    summary: str

    @property
    def span(self) -> str:
        first, last = self.run.first.at, self.run.last.at
        shown = first.strftime("%Y-%m-%d %H:%M:%S")
        return shown if self.run.count == 1 else f"{shown} to {last:%Y-%m-%d %H:%M:%S}"


def frozen_facts(frozen: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """What a rollback froze, as (label, words) lines: when, who, why, where, and the
    guardrails its decision found failing or breached."""
    if not frozen:
        return []
    facts = []
    if frozen.get("at"):
        facts.append(("When", f"{frozen['at']} ({frozen.get('cause') or 'rollback'})"))
    if frozen.get("who"):
        facts.append(("Who", str(frozen["who"])))
    reason = frozen.get("reason") or "—"
    kind = frozen.get("reason_class")
    facts.append(("Why", f"{reason} [{kind}]" if kind else str(reason)))
    stage = frozen.get("stage")
    if isinstance(stage, int):
        facts.append(("Stage", f"{stage + 1} ({frozen.get('percent', '?')} %)"))
    decision = frozen.get("decision") or {}
    per_metric = decision.get("per_metric") if isinstance(decision, Mapping) else None
    for name, verdict in (per_metric or {}).items():
        if isinstance(verdict, Mapping) and verdict.get("state") in ("fail", "breach"):
            facts.append((f"Guardrail {name}", str(verdict.get("message") or verdict["state"])))
    return facts


def log_lines(report: reports.Report) -> list[LogLine]:
    runs = folded(report.log)
    summaries = views.log_rows(run.last for run in runs)
    return [LogLine(run, row.summary) for run, row in zip(runs, summaries, strict=True)]


def arm_labels(report: reports.Report) -> dict[str, str]:
    """The arms' keys as people read them: "on (served as on~r7)" (none for a rollout that
    serves the plain names)."""
    served, plan = report.rollout.served_as, report.plan
    return served_labels(
        ((served.treatment, plan.treatment), (served.control, plan.control.variation))
    )


def kpi_charts(report: reports.Report) -> list[dict[str, Any]]:
    """A chart per KPI with data: its value per arm over the rollout, bucket by bucket."""
    table, charts, labels = report.table, [], arm_labels(report)
    for name, found in report.series.items():
        if table is None or not found:
            continue
        metric = METRICS[name]
        named = {labels.get(variant, variant): points for variant, points in found.items()}
        data = chart(metric, named, table.since, table.until, report.step)
        charts.append({"name": name, "title": metric.title, "unit": unit_of(metric), "data": data})
    return charts


def report_context(report: reports.Report) -> dict[str, Any]:
    """What the report's template shows (the page and the file alike)."""
    rollout = report.rollout
    plan = report.plan
    decisions = [e for e in report.log if e.kind == "decision"]
    table = report.table
    return {
        "report": report,
        "rollout": rollout,
        "plan": plan,
        "stage_lines": [stage_line(s, plan.stages[s.index], report.final) for s in report.stages],
        "kpi_rows": [board_row(row, arm_labels(report)) for row in table.rows] if table else [],
        "kpi_data": table is not None and has_data(table),
        "metric_rows": views.metric_rows(rollout, plan),
        "guardrail_charts": views.guardrail_charts(plan, decisions),
        "kpi_charts": kpi_charts(report),
        "log_lines": log_lines(report),
        "frozen": frozen_facts(report.frozen_evidence),
        "first_reason": views.first_reason(rollout.last_decision),
    }


@router.get("/rollouts/{rollout_id}/report")
def report_page(request: Request, rollout_id: int, rt: SigningDep, viewer: PageViewer) -> Response:
    """The rollout's report: the same as GET /api/v1/rollouts/{id}/report, to read and print."""
    made = reports.build(rt, rollout_id, charts=True)
    context = report_context(made) | {"charts": True}
    return render(request, rt, "rollout_report.html", context, viewer=viewer, section=SECTION)


def _inline(path: Path) -> Markup:
    """A static file's text for a <script> or <style> of the standalone file (a closing tag
    inside it escaped, so it cannot end the element early)."""
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    escaped = re.sub(r"</(script|style)", r"<\\/\1", text, flags=re.IGNORECASE)
    return Markup(escaped)  # noqa: S704 (the console's own static files, not user input)


def standalone_html(report: reports.Report) -> str:
    """The report as one HTML file that needs no server: the console's stylesheet, uPlot and
    pages.js inlined, so it opens, charts and prints from disk."""
    installed, _ = libraries(VENDOR_DIR)
    charting = [lib for lib in installed if lib.pages == "charts"]
    context = report_context(report) | {
        "version": __version__,
        "prefix": PREFIX,
        "styles": [_inline(STATIC_DIR / "console.css")]
        + ([_inline(VENDOR_DIR / "uPlot.min.css")] if charting else []),
        "scripts": [_inline(VENDOR_DIR / lib.file) for lib in charting]
        + [_inline(STATIC_DIR / "pages.js")],
    }
    return templates.get_template("rollout_report_file.html").render(context)
