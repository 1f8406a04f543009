"""`reelout flags schedule add|list|cancel` and `reelout flags stale`: scheduled changes and the
stale-flag report on the command line, calling the same services as the HTTP API."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import BaseModel, ValidationError
from rich.markup import escape
from rich.table import Table

from reelout.cli_common import AsJson, cli_principal, console
from reelout.errors import BadRequest
from reelout.flags.cli.base import (
    DEFAULT_ENV,
    Env,
    admin_runtime,
    checked_environment,
)
from reelout.flags.engine import validation
from reelout.flags.governance import schedules, stale_report
from reelout.flags.governance.schemas import ScheduleAction, ScheduleIn, ScheduleOut, ScheduleStatus


def register(flags_app: typer.Typer) -> None:
    """Add `schedule add|list|cancel` and `stale` to the `reelout flags` app."""
    schedule_app = typer.Typer(
        help="Flag changes applied at a time (cancelable until then).", no_args_is_help=True
    )
    schedule_app.command("add")(schedule_add)
    schedule_app.command("list")(schedule_list)
    schedule_app.command("cancel")(schedule_cancel)
    flags_app.add_typer(schedule_app, name="schedule")
    flags_app.command("stale")(stale)


# ---- plumbing ----------------------------------------------------------------------------------


def _print_json(value: BaseModel | list[Any]) -> None:
    if isinstance(value, BaseModel):
        typer.echo(value.model_dump_json(indent=2))
    else:
        typer.echo(json.dumps(value, indent=2, ensure_ascii=False))


def _when(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise BadRequest(
            f"--at {text!r} is not an ISO 8601 time; e.g. 2026-12-01T09:00:00Z",
            code="INVALID_TIME",
        ) from None


def _json_object(text: str, what: str) -> dict[str, Any]:
    value = validation.parse(text)
    if not isinstance(value, dict):
        raise BadRequest(f"{what} must be a JSON object", code="INVALID_JSON")
    return value


def _definition(path: Path | None) -> dict[str, Any] | None:
    if path is None:
        return None
    try:
        text = sys.stdin.read() if str(path) == "-" else path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BadRequest(f"cannot read {path}: {exc}", code="FILE_UNREADABLE") from None
    return _json_object(text, "the definition")


def _schedule_in(**fields: Any) -> ScheduleIn:
    try:
        return ScheduleIn(**fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise BadRequest(f"{where}: {first['msg']}", code="INVALID_REQUEST") from None


# ---- schedule ----------------------------------------------------------------------------------


def schedule_add(
    flag: Annotated[str, typer.Argument(help="The flag's key, e.g. use_tus_upload.")],
    action: Annotated[ScheduleAction, typer.Option(help="kill, put, patch or delete.")],
    at: Annotated[str, typer.Option("--at", help="When, ISO 8601 (no zone: UTC).")],
    definition: Annotated[
        Path | None, typer.Option(help="put: a file with the flag's definition (- for stdin).")
    ] = None,
    patch: Annotated[
        str | None,
        typer.Option(help='patch: a JSON Merge Patch, e.g. \'{"defaultVariant":"on"}\'.'),
    ] = None,
    reason: Annotated[
        str | None, typer.Option("--reason", "-r", help="Why; kept in the audit log.")
    ] = None,
    env: Env = DEFAULT_ENV,
    as_json: AsJson = False,
) -> None:
    """Schedule a flag change; it is checked now against the current flag set."""
    with admin_runtime() as rt:
        body = _schedule_in(
            flag=flag,
            action=action,
            apply_at=_when(at),
            definition=_definition(definition),
            patch=_json_object(patch, "--patch") if patch is not None else None,
            reason=reason,
        )
        most = rt.settings.flag_max_pending_schedules
        with rt.db.session() as session:
            made = schedules.create(
                session,
                rt.clock,
                checked_environment(rt, env),
                body,
                cli_principal(),
                max_pending=most,
            )
    if as_json:
        _print_json(made)
        return
    console.print(
        f"Scheduled change [bold]#{made.id}[/bold]: {made.action.value} {escape(made.flag)} "
        f"in {made.environment} at {made.apply_at:%Y-%m-%d %H:%M:%S %Z}."
    )


def _outcome(item: ScheduleOut) -> str:
    if item.canceled_by is not None:
        why = f": {item.cancel_reason}" if item.cancel_reason else ""
        return f"canceled by {item.canceled_by}{why}"
    if item.error is not None:
        return f"{item.error.code}: {item.error.message}"
    return f"revision {item.revision}" if item.revision is not None else "-"


def schedule_list(
    env: Env = DEFAULT_ENV,
    status: Annotated[ScheduleStatus | None, typer.Option(help="Only this status.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 100,
    as_json: AsJson = False,
) -> None:
    """List scheduled changes, soonest first."""
    with admin_runtime() as rt, rt.db.read() as session:
        page = schedules.list_schedules(session, checked_environment(rt, env), status, limit)
    if as_json:
        _print_json(page)
        return
    table = Table("id", "flag", "action", "apply at (UTC)", "status", "by", "reason", "outcome")
    for item in page.schedules:
        table.add_row(
            str(item.id),
            escape(item.flag),
            item.action.value,
            f"{item.apply_at:%Y-%m-%d %H:%M:%S}",
            item.status.value,
            escape(item.scheduled_by),
            escape(item.reason or "-"),
            escape(_outcome(item)),
        )
    console.print(table)


def schedule_cancel(
    schedule_id: Annotated[int, typer.Argument(help="Id from `reelout flags schedule list`.")],
    reason: Annotated[
        str | None, typer.Option("--reason", "-r", help="Why; kept on the schedule.")
    ] = None,
    env: Env = DEFAULT_ENV,
    as_json: AsJson = False,
) -> None:
    """Cancel a pending scheduled change (recorded as canceled by cli:<user>)."""
    with admin_runtime() as rt, rt.db.session() as session:
        environment = checked_environment(rt, env)
        canceled = schedules.cancel(
            session, rt.clock, environment, schedule_id, cli_principal(), reason
        )
    if as_json:
        _print_json(canceled)
        return
    console.print(
        f"Canceled scheduled change #{canceled.id} ({canceled.action.value} {canceled.flag})."
    )


# ---- stale -------------------------------------------------------------------------------------


def stale(
    env: Env = DEFAULT_ENV,
    days: Annotated[
        int | None, typer.Option(min=1, help="Unchanged for this long (REELOUT_FLAG_STALE_DAYS).")
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Flags serving one variant to everyone for N days: ready to remove from the code."""
    with admin_runtime() as rt, rt.db.read() as session:
        report = stale_report.report(
            session, rt.clock, checked_environment(rt, env), days or rt.settings.flag_stale_days
        )
    if as_json:
        _print_json(report)
        return
    table = Table("flag", "everyone gets", "why", "unchanged since", title=None)
    for item in report.flags:
        gets = (
            "the code default"
            if item.variant is None
            else f"{item.variant} = {json.dumps(item.value)}"
        )
        table.add_row(
            escape(item.key),
            escape(gets),
            escape(item.detail),
            f"{item.since:%Y-%m-%d} (r{item.since_revision})",
        )
    console.print(
        f"{len(report.flags)} flag(s) in {report.environment} unchanged at one variant for {report.days}+ days:"
    )
    console.print(table)
