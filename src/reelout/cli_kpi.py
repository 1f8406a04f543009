"""`reelout kpi`: the seed's KPI table for a flag's arms (or everyone), read with the same
service as GET /api/v1/kpis and the console's KPI board."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from reelout.cli_common import AsJson, command_runtime, console, iso_time
from reelout.cli_common import table as cli_table
from reelout.rollouts.kpi_arms import rollout_arms
from reelout.telemetry import kpis
from reelout.telemetry.kpis import Arm, KpiRow
from reelout.telemetry.metrics import SEED_KPIS, Metric


def _value(metric: Metric, value: float | None) -> str:
    if value is None:
        return "-"
    if metric.display == "percent":
        return f"{value:.1%}"
    if metric.display == "seconds":
        return f"{value:.2f} s"
    return f"{value:.2f}"


def _arm(metric: Metric, arm: Arm | None) -> Text:
    if arm is None or arm.value is None:
        return Text("no data", style="dim")
    spread = f" [{_value(metric, arm.lower)}, {_value(metric, arm.upper)}]"
    return Text(_value(metric, arm.value)) + Text(spread, style="dim") + Text(f" n={arm.n}")


def _difference(row: KpiRow) -> Text:
    if row.difference is None:
        return Text("-", style="dim")
    effect, lower, upper = row.difference
    percent = row.metric.display == "percent"

    def fmt(value: float) -> str:
        return f"{value * 100:+.1f} pp" if percent else f"{value:+.2f}"

    harmful = (upper < 0) if row.metric.direction == "higher" else (lower > 0)
    style = "red" if harmful else "green" if (lower > 0 or upper < 0) else ""
    return Text(f"{fmt(effect)} [{fmt(lower)}, {fmt(upper)}]", style=style)


def _verdict(row: KpiRow) -> Text:
    if row.passed is None:
        return Text("-", style="dim")
    return Text("pass", style="green") if row.passed else Text("fail", style="red")


def kpi_rich_table(table: kpis.KpiTable) -> Table:
    """The seed's table as `reelout kpi` prints it (also in `reelout rollouts report`)."""
    arms = ("control", "treatment") if table.flag else ("everyone",)
    out = cli_table(
        "KPI", "baseline", "target", *arms, *(("difference",) if table.flag else ()), "goal"
    )
    for row in table.rows:
        goal = row.metric.goal
        cells = [_arm(row.metric, row.control)]
        if table.flag:
            cells += [_arm(row.metric, row.treatment), _difference(row)]
        out.add_row(
            row.metric.title,
            _value(row.metric, goal.baseline) if goal else "-",
            f"{goal.op} {_value(row.metric, goal.target)}" if goal else "-",
            *cells,
            _verdict(row),
        )
    mark = f"{table.watermark:%Y-%m-%d %H:%M:%S} UTC" if table.watermark else "never"
    out.caption = f"{table.since:%Y-%m-%d %H:%M} → {table.until:%H:%M} UTC · rolled up to {mark}"
    if table.rollout is not None:
        found = table.rollout
        out.caption += (
            f" · the arms of rollout {found.rollout} ({found.state}): {found.treatment} (served "
            f"as {found.served_treatment}) against {found.control} (served as "
            f"{found.served_control})"
        )
    return out


def kpi(
    environment: Annotated[str, typer.Option("--env", help="The environment to read.")],
    flag: Annotated[str | None, typer.Option(help="Compare this flag's arms.")] = None,
    window: Annotated[str, typer.Option(help="How far back: 15m, 6h, 7d.")] = "24h",
    control: Annotated[str | None, typer.Option(help="The control variant.")] = None,
    treatment: Annotated[
        str | None,
        typer.Option(
            help="The treatment variant. With neither arm given: the flag's rollout's arms in "
            "the window, else the variant named like a control against another."
        ),
    ] = None,
    metric: Annotated[
        list[str] | None, typer.Option(help="A metric to show (repeat; default: the seed's six).")
    ] = None,
    until: Annotated[
        datetime | None, typer.Option(parser=iso_time, help="The window's end (default: now).")
    ] = None,
    as_json: AsJson = False,
) -> None:
    """The seed's KPIs: baseline, target, control, treatment, the difference with its 95 %
    interval, and pass or fail against the target."""
    with command_runtime() as rt:
        names = list(metric) if metric else list(SEED_KPIS)
        window_ = kpis.parse_window(window)
        table = kpis.kpi_table(
            rt, environment, window_, flag, control, treatment, names, until, rollout_arms
        )
    if as_json:
        typer.echo(json.dumps(kpis.table_body(table), indent=2))
    else:
        console.print(kpi_rich_table(table))
