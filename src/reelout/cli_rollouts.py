"""`reelout rollouts`: create a rollout from a plan file, list and show rollouts, read their log
and report, and send the operator's commands, calling the same services as /api/v1/rollouts."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from pydantic import BaseModel
from rich.text import Text

from reelout.cli_common import AsJson, cli_principal, command_runtime, console, fail_with_hints
from reelout.cli_common import table as cli_table
from reelout.cli_kpi import kpi_rich_table
from reelout.flags.admin.service import seed_on_start
from reelout.rollouts import report as reports
from reelout.rollouts import service
from reelout.rollouts.notices import failing
from reelout.rollouts.plan import load_plan, seed_template, stored_plan
from reelout.rollouts.schemas import RolloutOut
from reelout.rollouts.states import Command, State
from reelout.web import rollout_report as report_page
from reelout.web import rollout_views as views

rollouts_app = typer.Typer(
    help="Staged rollouts: plans, their state, commands and decision log.", no_args_is_help=True
)
HINTS = {
    "ROLLOUT_NOT_FOUND": "See the rollouts with `reelout rollouts list`.",
    "ROLLOUT_STATE_CONFLICT": "See what it allows with `reelout rollouts show ID`.",
    "ROLLOUT_EXISTS": "See it with `reelout rollouts list --flag FLAG`.",
}
RolloutId = Annotated[int, typer.Argument(help="The rollout's id.")]
Reason = Annotated[str | None, typer.Option("--reason", "-r", help="Why (kept in the log).")]


def _echo(value: BaseModel) -> None:
    typer.echo(value.model_dump_json(indent=2))


def _when(at: datetime | None) -> str:
    return "-" if at is None else f"{at:%Y-%m-%d %H:%M:%S}"


def _read_plan(file: str) -> dict[str, Any]:
    """A YAML or JSON plan file, checked (`load_plan`), as the JSON it reads as (defaults
    written out, durations as text)."""
    raw = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
    return load_plan(raw).model_dump(mode="json")


@rollouts_app.command("create")
def create(
    file: Annotated[str, typer.Option("--file", "-f", help="A YAML or JSON plan; - for stdin.")],
    as_json: AsJson = False,
) -> None:
    """A pending rollout of the plan's flag (POST /api/v1/rollouts)."""
    with command_runtime(seed_on_start, exit_with=fail_with_hints(HINTS)) as rt:
        plan = _read_plan(file)
        with rt.db.session() as session:
            made = service.create(
                session, rt.clock, plan, cli_principal(), environments=rt.settings.environments
            )
    _show(made, as_json)


@rollouts_app.command("template")
def template(
    flag: Annotated[str, typer.Option("--flag", help="The flag to roll out.")],
    environment: Annotated[str, typer.Option("--env", help="Its environment.")] = "production",
    treatment: Annotated[str, typer.Option(help="The variant rolled out.")] = "on",
    control: Annotated[str, typer.Option(help="The variant it is compared with.")] = "off",
) -> None:
    """Print the seed's plan (10% -> 25% -> 50% -> 100%) for a flag as YAML, to edit and give to
    `reelout rollouts create -f`."""
    plan = seed_template(flag, environment, treatment, control)
    typer.echo(f"# The seed's rollout of {flag} in {environment}: docs/rollouts/plans.md explains")
    typer.echo("# every field. Edit it, then: reelout rollouts create -f FILE")
    typer.echo(yaml.safe_dump({"rollout": plan.model_dump(mode="json")}, sort_keys=False), nl=False)


@rollouts_app.command("list")
def list_rollouts(
    env: Annotated[str | None, typer.Option(help="Only this environment's.")] = None,
    flag: Annotated[str | None, typer.Option(help="Only this flag's.")] = None,
    state: Annotated[list[State] | None, typer.Option(help="Only these states.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 50,
    as_json: AsJson = False,
) -> None:
    """Rollouts, newest first (GET /api/v1/rollouts)."""
    states = tuple(s.value for s in state) if state else None
    where = service.RolloutFilter(environment=env, flag=flag, states=states)
    with command_runtime(exit_with=fail_with_hints(HINTS)) as rt, rt.db.read() as session:
        page = service.list_rollouts(session, where, limit=limit)
    if as_json:
        _echo(page)
        return
    table = cli_table("id", "flag", "environment", "state", "stage", "since (UTC)", "created by")
    for r in page.rollouts:
        stage = f"{r.stage + 1} ({r.percent}%)"
        since = _when(r.stage_started_at or r.created_at)
        table.add_row(str(r.id), r.flag, r.environment, r.state, stage, since, r.created_by)
    if not page.rollouts:
        table.caption = "no rollouts"
    console.print(table)


def _show(rollout: RolloutOut, as_json: bool) -> None:
    if as_json:
        _echo(rollout)
        return
    lines = [
        f"rollout {rollout.id}: {rollout.flag} in {rollout.environment}",
        f"arms: {_arms(rollout)}",
        f"state: {rollout.state}, stage {rollout.stage + 1} at {rollout.percent}%"
        f" since {_when(rollout.stage_started_at)}",
        f"allows: {', '.join(rollout.allowed) or 'nothing (final)'}",
        f"version: {rollout.version}",
    ]
    if rollout.approvals:
        lines.append(f"approved stages: {', '.join(str(s + 1) for s in rollout.approvals)}")
    for metric, why in rollout.dismissed.items():
        lines.append(f"dismissed {metric}: {why}")
    lines += _frozen(rollout.frozen_evidence)
    console.print(Text("\n".join(lines)))


def _arm(plain: str, served: str) -> str:
    return plain if served == plain else f"{plain} (served as {served})"


def _arms(rollout: RolloutOut) -> str:
    """ "on (served as on~r7) against off (served as off~r7)": the plan's variants, and the keys
    the flag serves them as while the rollout runs."""
    plan = stored_plan(rollout.plan)
    served = rollout.served_as
    treatment = _arm(plan.treatment, served.treatment)
    return f"{treatment} against {_arm(plan.control.variation, served.control)}"


def _frozen(frozen: dict[str, Any] | None) -> list[str]:
    """What a rolled-back rollout was rolled back on: who, when, why, the failing guardrails."""
    if not frozen:
        return []
    head = (
        f"rolled back by {frozen.get('who')} at {frozen.get('at')}"
        f" ({frozen.get('reason_class')}): {frozen.get('reason') or 'no reason given'}"
    )
    return [head, *(f"  {message}" for message in failing(frozen.get("decision")))]


@rollouts_app.command("show")
def show(rollout_id: RolloutId, as_json: AsJson = False) -> None:
    """One rollout (GET /api/v1/rollouts/ID)."""
    with command_runtime(exit_with=fail_with_hints(HINTS)) as rt, rt.db.read() as session:
        _show(service.get(session, rollout_id), as_json)


@rollouts_app.command("log")
def log(
    rollout_id: RolloutId,
    kind: Annotated[str | None, typer.Option(help="command or decision.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 500,
    cursor: Annotated[str | None, typer.Option(help="Continue after a page's cursor.")] = None,
    as_json: AsJson = False,
) -> None:
    """The rollout's commands and decisions, oldest first (GET /api/v1/rollouts/ID/log)."""
    with command_runtime(exit_with=fail_with_hints(HINTS)) as rt, rt.db.read() as session:
        page = service.log_page(session, rollout_id, limit=limit, cursor=cursor, kind=kind)
    if as_json:
        _echo(page)
        return
    table = cli_table("at (UTC)", "kind", "who", "what", "reason")
    for e in page.entries:
        table.add_row(_when(e.at), e.kind, e.who, e.what, Text(e.reason or "-"))
    console.print(table)


@rollouts_app.command("report")
def report(
    rollout_id: RolloutId,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write the report as one HTML file (charts inlined)."),
    ] = None,
    as_json: AsJson = False,
) -> None:
    """The rollout's report: stages, KPIs against the seed's targets, guardrails and the log
    (GET /api/v1/rollouts/ID/report; the console's report page with --output)."""
    with command_runtime(exit_with=fail_with_hints(HINTS)) as rt:
        made = reports.build(rt, rollout_id, charts=output is not None)
    if output is not None:
        output.write_text(report_page.standalone_html(made), encoding="utf-8")
        console.print(Text(f"rollout {rollout_id}'s report written to {output}"))
    elif as_json:
        _echo(reports.report_body(made))
    else:
        _print_report(made)


def _print_report(made: reports.Report) -> None:
    r, window = made.rollout, made.window
    decided = ", ".join(f"{kind} {n}" for kind, n in made.decisions.items()) or "none"
    lines = [
        f"rollout {r.id}: {r.flag} in {r.environment}, {r.state}"
        + ("" if made.final else " (not over: the report runs to now)"),
        f"arms: {_arms(r)}",
        f"window: {_when(window[0])} to {_when(window[1])} UTC" if window else "window: none yet",
        f"decisions: {decided}",
    ]
    console.print(Text("\n".join(lines)))
    plan = stored_plan(r.plan)
    stages = cli_table("stage", "plan", "entered", "left", "duration", "units (T / C)", "decisions")
    for s in made.stages:
        line = report_page.stage_line(s, plan.stages[s.index], made.final)
        stages.add_row(
            f"{s.index + 1} ({s.percent}%)", line.planned, line.entered, line.left,
            line.duration, line.units, line.decisions,
        )  # fmt: skip
    console.print(stages)
    if made.table is not None:
        console.print(kpi_rich_table(made.table))
    verdicts = cli_table(
        "guardrail", "role", "state", "estimate", "interval", "margin", "n (T / C)"
    )
    for m in views.metric_rows(r, plan):
        state = f"{m.state}: {m.dismissed}" if m.dismissed else m.state
        verdicts.add_row(
            m.metric, m.role, state, m.estimate, m.interval, m.threshold,
            f"{m.n_treatment} / {m.n_control}",
        )  # fmt: skip
    if verdicts.row_count:
        console.print(verdicts)
    frozen = report_page.frozen_facts(made.frozen_evidence)
    if frozen:
        said = "\n".join(f"  {label}: {text}" for label, text in frozen)
        console.print(Text("rolled back on:\n" + said))
    log = cli_table("at (UTC)", "kind", "who", "what", "reason")
    for entry in report_page.log_lines(made):
        e = entry.run.last
        what = e.what + (f" x{entry.run.count}" if entry.run.count > 1 else "")
        log.add_row(entry.span, e.kind, e.who, what, Text(e.reason or "-"))
    console.print(log)


def _command(
    command: Command,
    rollout_id: int,
    reason: str | None,
    metric: str | None = None,
    stage: int | None = None,
) -> None:
    with command_runtime(exit_with=fail_with_hints(HINTS)) as rt, rt.db.session() as session:
        args = service.CommandArgs(command, reason, metric, stage)
        done = service.command(session, rt.clock, rollout_id, args, cli_principal())
    _show(done, False)


@rollouts_app.command("start")
def start(rollout_id: RolloutId, reason: Reason = None) -> None:
    """Start a pending rollout: its first stage's split is written to the flag."""
    _command(Command.start, rollout_id, reason)


@rollouts_app.command("pause")
def pause(rollout_id: RolloutId, reason: Reason = None) -> None:
    """Pause a running rollout (the flag stays as it is)."""
    _command(Command.pause, rollout_id, reason)


@rollouts_app.command("resume")
def resume(rollout_id: RolloutId, reason: Reason = None) -> None:
    """Resume a paused rollout: its stage's split is written again."""
    _command(Command.resume, rollout_id, reason)


@rollouts_app.command("promote")
def promote(rollout_id: RolloutId, reason: Annotated[str, typer.Option("--reason", "-r")]) -> None:
    """Skip the gate: go to the next stage now (or complete from the last one)."""
    _command(Command.promote, rollout_id, reason)


@rollouts_app.command("approve")
def approve(
    rollout_id: RolloutId,
    stage: Annotated[
        int | None, typer.Option(help="Stage number (1 = first); default next.")
    ] = None,
    reason: Reason = None,
) -> None:
    """Approve a stage that needs a person's approval."""
    _command(Command.approve, rollout_id, reason, stage=None if stage is None else stage - 1)


@rollouts_app.command("abort")
def abort(rollout_id: RolloutId, reason: Reason = None) -> None:
    """End the rollout and leave the flag as it is."""
    _command(Command.abort, rollout_id, reason)


@rollouts_app.command("rollback")
def rollback(rollout_id: RolloutId, reason: Reason = None) -> None:
    """Give everyone the control now (live to connected apps) and end the rollout."""
    _command(Command.rollback, rollout_id, reason)


@rollouts_app.command("dismiss")
def dismiss(
    rollout_id: RolloutId,
    metric: Annotated[str, typer.Argument(help="The guardrail metric.")],
    reason: Annotated[str, typer.Option("--reason", "-r")],
) -> None:
    """Dismiss a guardrail's regression (logged with the reason)."""
    _command(Command.dismiss, rollout_id, reason, metric=metric)
