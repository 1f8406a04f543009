"""The console's KPI board: the seed's table for one flag's arms (or everyone) over a window, as
GET /api/v1/kpis gives it (by default a rollout's arms, named as people know them), and one chart
per KPI over time per arm (GET /api/v1/kpis/series)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response

from reelout.deps import SigningDep
from reelout.flags.admin import service as flags
from reelout.rollouts.kpi_arms import rollout_arms
from reelout.telemetry import kpis
from reelout.telemetry.metrics import METRICS, Metric
from reelout.web.pages import PREFIX, ConsoleRoute, PageViewer, render

router = APIRouter(prefix=PREFIX, include_in_schema=False, route_class=ConsoleRoute)
SECTION = "kpis"
# The windows the board offers and the width of a chart's buckets for each.
WINDOWS: dict[str, timedelta] = {
    "1h": timedelta(minutes=1),
    "24h": timedelta(minutes=15),
    "7d": timedelta(hours=2),
}
Window = Literal["1h", "24h", "7d"]


def shown(metric: Metric, value: float | None) -> str:
    """A value as the metric reads: 97.0 %, 84.2 s, 4.21 (of 5); no value: a dash."""
    if value is None:
        return "—"
    if metric.display == "percent":
        return f"{value * 100:.1f} %"
    if metric.display == "seconds":
        return f"{value:.1f} s"
    return f"{value:.2f}"


def shown_difference(metric: Metric, value: float) -> str:
    """A difference: percentage points for a percentage, signed."""
    if metric.display == "percent":
        return f"{value * 100:+.1f} pp"
    if metric.display == "seconds":
        return f"{value:+.1f} s"
    return f"{value:+.2f}"


def verdict(metric: Metric, difference: tuple[float, float, float]) -> str:
    """What the 95 % interval of treatment - control says, in the metric's direction."""
    _, lower, upper = difference
    if lower <= 0 <= upper:
        return "no clear difference"
    better = (lower > 0) == (metric.direction == "higher")
    return "improvement" if better else "harm"


@dataclass(frozen=True)
class ArmCell:
    variant: str
    value: str
    interval: str
    n: int


@dataclass(frozen=True)
class BoardRow:
    """One KPI of the table as the board prints it (text, never colour alone)."""

    name: str
    title: str
    baseline: str
    target: str
    control: ArmCell | None
    treatment: ArmCell | None
    difference: str
    verdict: str  # improvement, harm, no clear difference, or "" (too little data)
    result: str  # pass, fail, no data, no target


def served_labels(arms: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Each (served key, plain variant) arm's key as people read it: "on (served as on~r7)"
    (none for an arm served under its plain name)."""
    return {key: f"{plain} (served as {key})" for key, plain in arms if key != plain}


def rollout_labels(found: kpis.RolloutArms | None) -> dict[str, str]:
    """The labels of the arms of the rollout the table's arms are (none without one)."""
    if found is None:
        return {}
    arms = ((found.served_treatment, found.treatment), (found.served_control, found.control))
    return served_labels(arms)


def row_series(
    row: kpis.KpiRow, found: dict[str, list[tuple[datetime, float | None]]],
    labels: Mapping[str, str],
) -> dict[str, list[tuple[datetime, float | None]]]:  # fmt: skip
    """A KPI's series for its chart: of the row's two arms only (everyone without a flag),
    named as the table names them."""
    arms = {arm.variant for arm in (row.control, row.treatment) if arm is not None}
    return {labels.get(v, v): points for v, points in found.items() if v in arms}


def _cell(metric: Metric, arm: kpis.Arm | None, labels: Mapping[str, str]) -> ArmCell | None:
    if arm is None:
        return None
    interval = (
        f"{shown(metric, arm.lower)} to {shown(metric, arm.upper)}"
        if arm.lower is not None and arm.upper is not None
        else ""
    )
    label = labels.get(arm.variant, arm.variant) if arm.variant else "everyone"
    return ArmCell(label, shown(metric, arm.value), interval, arm.n)


def board_row(row: kpis.KpiRow, labels: Mapping[str, str] | None = None) -> BoardRow:
    """`labels`: how to name a variant other than by its key (a rollout's `on~r7` as "on
    (served as on~r7)")."""
    metric, goal = row.metric, row.metric.goal
    difference, said = "", ""
    if row.difference is not None:
        estimate, lower, upper = row.difference
        difference = (
            f"{shown_difference(metric, estimate)} ({shown_difference(metric, lower)} "
            f"to {shown_difference(metric, upper)})"
        )
        said = verdict(metric, row.difference)
    result = {True: "pass", False: "fail", None: "no data"}[row.passed]
    return BoardRow(
        name=metric.name,
        title=metric.title,
        baseline=shown(metric, goal.baseline) if goal else "—",
        target=f"{goal.op} {shown(metric, goal.target)}" if goal else "—",
        control=_cell(metric, row.control, labels or {}),
        treatment=_cell(metric, row.treatment, labels or {}),
        difference=difference,
        verdict=said,
        result=result if goal else "no target",
    )


def has_data(table: kpis.KpiTable) -> bool:
    arms = [arm for row in table.rows for arm in (row.control, row.treatment) if arm]
    return any(arm.n > 0 for arm in arms)


def chart(
    metric: Metric,
    found: dict[str, list[tuple[datetime, float | None]]],
    since: datetime,
    until: datetime,
    step: timedelta,
) -> dict[str, Any]:
    """The `data-chart` JSON of one KPI: every bucket of the window (as kpis.series aligns
    them), one series per arm with a gap where it had no units, percentages in percent."""
    scale = 100.0 if metric.display == "percent" else 1.0
    width = int(step.total_seconds())
    first = int(since.timestamp()) // width * width
    xs = list(range(first, int(until.timestamp()) + 1, width))
    variants = sorted(found)
    ys = []
    for variant in variants:
        by_x = {int(at.timestamp()): value for at, value in found[variant]}
        ys.append([_scaled(by_x.get(x), scale) for x in xs])
    labels = [{"label": variant or "everyone"} for variant in variants]
    return {"series": labels, "x": xs, "ys": ys, "points": True}


def _scaled(value: float | None, scale: float) -> float | None:
    return None if value is None else value * scale


@router.get("/kpis")
def kpis_page(
    request: Request,
    rt: SigningDep,
    viewer: PageViewer,
    environment: Annotated[str | None, Query(description="The environment.")] = None,
    flag: Annotated[str, Query(description="A flag whose arms to compare; empty: everyone.")] = "",
    window: Annotated[Window, Query(description="How far back.")] = "24h",
) -> Response:
    """The seed's table for the flag's arms, the watermark and a chart per KPI."""
    settings = rt.settings
    env = flags.check_environment(
        environment or settings.console_flags_environment, settings.environments
    )
    with rt.db.read() as session:
        known = sorted(flags.current(session, env).document().get("flags", {}))
    table = kpis.kpi_table(rt, env, kpis.parse_window(window), flag or None, find_arms=rollout_arms)
    labels = rollout_labels(table.rollout)
    charts = []
    for row in table.rows:
        found = kpis.series(rt, env, row.metric.name, flag or None, *_span(window))
        found = row_series(row, found, labels)
        if found:
            charts.append({"name": row.metric.name, "title": row.metric.title,
                           "unit": unit_of(METRICS[row.metric.name]),
                           "data": chart(row.metric, found, table.since, table.until,
                                         WINDOWS[window])})  # fmt: skip
    context = {
        "env": env,
        "environments": settings.environments,
        "flags": known if flag in known or not flag else [flag, *known],
        "flag": flag,
        "window": window,
        "windows": list(WINDOWS),
        "table": table,
        "rollout": table.rollout,
        "rows": [board_row(row, labels) for row in table.rows],
        "has_data": has_data(table),
        "kpi_charts": charts,
        "charts": True,
    }
    return render(request, rt, "kpis.html", context, viewer=viewer, section=SECTION)


def _span(window: str) -> tuple[timedelta, timedelta]:
    return kpis.parse_window(window), WINDOWS[window]


def unit_of(metric: Metric) -> str:
    """What a KPI chart's values count in."""
    units = {
        "percent": "%",
        "seconds": "seconds",
        "score": "score of 5",
        "log_ms": "ln ms",
        "count": "units",
    }
    return units[metric.display]
