"""`reelout audit`: every change (flags, keys, webhooks, videos), newest first and filtered, read
with the same service and sources as GET /api/v1/audit/all and the console's Audit page."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from reelout.audit import service
from reelout.audit.routes import utc
from reelout.audit.schemas import Area, ChangeOut
from reelout.cli_common import AsJson, command_runtime, console, fail_with_hints, iso_time
from reelout.cli_common import table as cli_table
from reelout.flags.admin.service import seed_on_start

HINTS = {"INVALID_CURSOR": "Pass the cursor a previous `reelout audit` printed."}


def _patch(change: ChangeOut) -> str:
    """The change's size: its JSON Patch is in --json (the console opens it)."""
    if change.patch is None:
        return "-"
    return f"{len(change.patch)} op{'' if len(change.patch) == 1 else 's'}"


def _table(entries: list[ChangeOut]) -> Table:
    table = cli_table(
        "at (UTC)", "who", "action", "env", "target", "reason", "change", whole=("target",)
    )
    for change in entries:
        table.add_row(
            f"{change.at:%Y-%m-%d %H:%M:%S}",
            Text(change.actor),
            change.action,
            Text(change.environment or "-"),
            Text(change.target_id),
            Text(change.reason or ""),
            Text(_patch(change)),
        )
    if not entries:
        table.caption = "no changes match"
    return table


def audit(
    actor: Annotated[str | None, typer.Option(help="An API key's name or id, or cli:USER.")] = None,
    area: Annotated[Area | None, typer.Option(help="What the change is about.")] = None,
    env: Annotated[str | None, typer.Option("--env", "-e", help="An environment.")] = None,
    target: Annotated[
        str | None, typer.Option(help="A key, webhook, delivery, video or flag id.")
    ] = None,
    action: Annotated[
        str | None, typer.Option(help="e.g. video.deleted, webhook.created, flag.kill.")
    ] = None,
    since: Annotated[
        datetime | None,
        typer.Option(parser=iso_time, metavar="TIME", help="At or after (ISO 8601; no zone: UTC)."),
    ] = None,
    until: Annotated[
        datetime | None,
        typer.Option(parser=iso_time, metavar="TIME", help="Before (ISO 8601; no zone: UTC)."),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="How many changes.")] = 50,
    cursor: Annotated[str | None, typer.Option(help="The next page's cursor.")] = None,
    as_json: AsJson = False,
) -> None:
    """Every change, newest first: who, what, to which target, when, why and its JSON Patch."""
    from reelout.app import AUDIT_SOURCES  # the sources GET /api/v1/audit/all reads

    where = service.ChangeFilter(actor, area, env, target, action, utc(since), utc(until))
    with (
        command_runtime(seed_on_start, exit_with=fail_with_hints(HINTS)) as rt,
        rt.db.read() as session,
    ):
        page = service.list_changes(session, AUDIT_SOURCES, where, limit=limit, cursor=cursor)
    if as_json:
        typer.echo(json.dumps(page.model_dump(mode="json"), indent=2, ensure_ascii=False))
        return
    console.print(_table(page.entries))
    if page.next_cursor:
        console.print(f"older changes: --cursor {page.next_cursor}")
