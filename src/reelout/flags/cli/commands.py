"""`reelout flags`: the flag admin on the command line, calling the same services as the HTTP API."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from reelout.cli_common import AsJson, cli_principal, console, err_console
from reelout.errors import BadRequest, PayloadTooLarge, PreconditionFailed
from reelout.flags.admin import service
from reelout.flags.admin.schemas import AuditEntryOut, DiffSummary, PromotionOut, WriteOut
from reelout.flags.cli.base import (
    DEFAULT_ENV,
    Env,
    admin_runtime,
    checked_environment,
)
from reelout.flags.engine import templates, validation
from reelout.runtime import Runtime

flags_app = typer.Typer(
    help="Manage feature flags: one flagd flag set per environment.", no_args_is_help=True
)


Reason = Annotated[str | None, typer.Option("--reason", "-r", help="Why; kept in the audit log.")]
IfMatch = Annotated[
    str | None,
    typer.Option("--if-match", help="Only if the set is still at this ETag (e.g. production-r3)."),
]
Yes = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
FlagKey = Annotated[str, typer.Argument(help="The flag's key, e.g. use_tus_upload.")]


class FlagState(StrEnum):
    ENABLED = "ENABLED"
    DISABLED = "DISABLED"


# ---- plumbing ----------------------------------------------------------------------------------


def _etag(tag: str | None) -> str | None:
    """An ETag as typed: `production-r3` means `"production-r3"`."""
    if tag is None or tag.strip() == "*" or tag.strip().startswith(('"', "W/")):
        return tag
    return f'"{tag.strip()}"'


def _edit(reason: str | None, if_match: str | None = None) -> service.Edit:
    return service.Edit(cli_principal(), service.check_reason(reason), _etag(if_match))


def _read(path: Path) -> bytes:
    """A file's bytes; `-` is stdin."""
    if str(path) == "-":
        return sys.stdin.buffer.read()
    try:
        return path.read_bytes()
    except OSError as exc:
        raise BadRequest(f"cannot read {path}: {exc.strerror}", code="FILE_UNREADABLE") from None


def _sized(rt: Runtime, body: bytes) -> bytes:
    limit = rt.settings.flag_set_max_bytes
    if len(body) > limit:
        raise PayloadTooLarge(
            f"the definition is {len(body)} bytes; at most {limit} (REELOUT_FLAG_SET_MAX_BYTES)",
            code="FLAG_SET_TOO_LARGE",
        )
    return body


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _when(flag_set: service.StoredFlagSet) -> str:
    if flag_set.updated_at is None:
        return "nothing written yet"
    return f"{flag_set.updated_at:%Y-%m-%d %H:%M:%S} UTC"


def _written(written: WriteOut, what: str) -> None:
    where = escape(written.environment)
    if written.changed:
        console.print(
            f"{escape(what)}: {where} is now at revision {written.revision} (ETag {written.etag})"
        )
    else:
        console.print(
            f"{escape(what)}: nothing to change; {where} stays at revision {written.revision}"
        )


def _show_diff(title: str, summary: DiffSummary, patch: list[dict[str, Any]]) -> None:
    """Flags added, removed and changed, then the JSON Patch operation by operation."""
    if not patch:
        console.print(f"{escape(title)}: no difference")
        return
    console.print(f"[bold]{escape(title)}[/bold]")
    for keys, mark in ((summary.added, "[green]+ "), (summary.removed, "[red]- ")):
        for key in keys:
            console.print(f"  {mark}{escape(key)}[/]")
    for key in summary.changed:
        console.print(f"  [yellow]~ {escape(key)}[/]")
    table = Table("op", "path", "value", title="JSON Patch (RFC 6902)")
    for op in patch:
        path = f"{op['from']} → {op['path']}" if "from" in op else op["path"]
        value = json.dumps(op["value"], ensure_ascii=False) if "value" in op else ""
        table.add_row(op["op"], Text(path), Text(_short(value, 80)))
    console.print(table)


# ---- reading -----------------------------------------------------------------------------------


def _flag_row(key: str, flag: dict[str, Any]) -> dict[str, Any]:
    return {
        "key": key,
        "state": flag.get("state"),
        "defaultVariant": flag.get("defaultVariant"),
        "variants": flag.get("variants", {}),
        "targeted": bool(flag.get("targeting")),
    }


def _flags_table(flag_set: service.StoredFlagSet, rows: list[dict[str, Any]]) -> Table:
    title = f"{flag_set.environment} · revision {flag_set.revision} · {_when(flag_set)}"
    title += f" · ETag {flag_set.etag}" if flag_set.revision else ""
    table = Table("key", "state", "default", "variants", "targeted", title=title)
    for row in rows:
        variants = ", ".join(f"{k}={json.dumps(v)}" for k, v in row["variants"].items())
        state = row["state"] or "-"
        colour = "green" if state == "ENABLED" else "red"
        table.add_row(
            Text(row["key"]),
            Text(state, style=colour),
            Text(str(row["defaultVariant"])),
            Text(_short(variants, 40)),
            "yes" if row["targeted"] else "no",
        )
    if not rows:
        table.caption = "no flags yet: reelout flags init --template video-rollout"
    return table


@flags_app.command("list")
def list_flags(env: Env = DEFAULT_ENV, as_json: AsJson = False) -> None:
    """The environment's flags: state, default variant, variants, whether a rule targets users."""
    with admin_runtime() as rt, rt.db.read() as session:
        flag_set = service.current(session, checked_environment(rt, env))
    rows = [_flag_row(key, flag) for key, flag in flag_set.document().get("flags", {}).items()]
    if as_json:
        updated = flag_set.updated_at.isoformat() if flag_set.updated_at else None
        listing = {"environment": flag_set.environment, "revision": flag_set.revision}
        listing |= {"etag": flag_set.etag, "updated_at": updated, "flags": rows}
        typer.echo(_pretty(listing))
        return
    console.print(_flags_table(flag_set, rows))


@flags_app.command("get")
def get_flag(key: FlagKey, env: Env = DEFAULT_ENV) -> None:
    """One flag's flagd definition, as JSON."""
    with admin_runtime() as rt, rt.db.read() as session:
        _, flag = service.get_flag(session, checked_environment(rt, env), key)
    typer.echo(_pretty(flag))


@flags_app.command("export")
def export(
    env: Env = DEFAULT_ENV,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file, not stdout.")
    ] = None,
    revision: Annotated[
        int | None, typer.Option(help="An earlier revision instead of the current one.")
    ] = None,
) -> None:
    """The stored flag set, byte for byte (flagd JSON: keep it in git, run it in flagd)."""
    with admin_runtime() as rt, rt.db.read() as session:
        environment = checked_environment(rt, env)
        if revision is None:
            stored = service.current(session, environment)
            text, revision = stored.text, stored.revision
        else:
            text = service.get_revision(session, environment, revision).document
    if output is None:
        sys.stdout.flush()
        sys.stdout.buffer.write(text.encode("utf-8"))
        sys.stdout.buffer.flush()
        return
    output.write_bytes(text.encode("utf-8"))
    err_console.print(f"wrote {escape(environment)} revision {revision} to {escape(str(output))}")


def _history_table(environment: str, entries: list[AuditEntryOut]) -> Table:
    table = Table("revision", "when", "who", "action", "flags", "reason", title=environment)
    for entry in entries:
        flags = ", ".join(entry.flags[:3]) + (
            f" +{len(entry.flags) - 3}" if len(entry.flags) > 3 else ""
        )
        table.add_row(
            str(entry.revision),
            f"{entry.at:%Y-%m-%d %H:%M:%S}",
            Text(entry.actor),
            entry.action.value,
            Text(flags or "-"),
            Text(entry.reason or ""),
        )
    return table


@flags_app.command("history")
def history(
    env: Env = DEFAULT_ENV,
    flag: Annotated[str | None, typer.Option(help="Only changes that touched this flag.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="How many entries.")] = 20,
    as_json: AsJson = False,
) -> None:
    """The environment's audit log, newest first: who changed which flags, when and why."""
    with admin_runtime() as rt, rt.db.read() as session:
        environment = checked_environment(rt, env)
        page = service.list_audit(session, service.AuditFilter(environment, flag), limit=limit)
    if as_json:
        typer.echo(_pretty(page.model_dump(mode="json")))
        return
    console.print(_history_table(environment, page.entries))
    if page.next_cursor:
        console.print(f"(older entries exist: --limit {min(limit * 2, 500)} shows more)")


# ---- writing -----------------------------------------------------------------------------------


def _definition(file: Path | None, text: str | None) -> bytes:
    if file is not None and text is not None:
        raise BadRequest("give the definition once: --file or --json", code="AMBIGUOUS_INPUT")
    if file is not None:
        return _read(file)
    if text is not None:
        return text.encode("utf-8")
    if sys.stdin.isatty():
        raise BadRequest(
            "give the flag's definition with --file PATH, --json TEXT or on stdin, "
            "or change it with --state / --default",
            code="DEFINITION_REQUIRED",
        )
    body = _read(Path("-"))
    if not body.strip():
        raise BadRequest(
            "stdin was empty: give the flag's definition with --file PATH, --json TEXT or on "
            "stdin, or change it with --state / --default",
            code="DEFINITION_REQUIRED",
        )
    return body


def _shortcuts(state: FlagState | None, default: str | None) -> bytes | None:
    """The merge patch --state and --default stand for (None: neither was given)."""
    patch: dict[str, str] = {}
    if state is not None:
        patch["state"] = state.value
    if default is not None:
        patch["defaultVariant"] = default
    return json.dumps(patch).encode() if patch else None


@flags_app.command("set")
def set_flag(
    key: FlagKey,
    env: Env = DEFAULT_ENV,
    file: Annotated[
        Path | None, typer.Option("--file", "-f", help="The flag's definition ('-': stdin).")
    ] = None,
    text: Annotated[str | None, typer.Option("--json", help="The definition as JSON text.")] = None,
    state: Annotated[
        FlagState | None, typer.Option(case_sensitive=False, help="Only change the state.")
    ] = None,
    default: Annotated[
        str | None, typer.Option("--default", help="Only change the default variant.")
    ] = None,
    reason: Reason = None,
    if_match: IfMatch = None,
) -> None:
    """Create or replace a flag (definition from --file, --json or stdin), or change its state or
    default variant with --state / --default."""
    with admin_runtime() as rt:
        environment, edit, patch = (
            checked_environment(rt, env),
            _edit(reason, if_match),
            _shortcuts(state, default),
        )
        if patch is not None and (file is not None or text is not None):
            raise BadRequest(
                "give either a definition (--file/--json) or --state/--default, not both",
                code="AMBIGUOUS_INPUT",
            )
        write = service.patch_flag if patch is not None else service.put_flag
        body = patch if patch is not None else _sized(rt, _definition(file, text))
        with rt.db.session() as session:
            written, _ = write(session, rt.clock, environment, key, body, edit)
    _written(written, f"set {key}")


@flags_app.command("kill")
def kill(
    key: FlagKey, env: Env = DEFAULT_ENV, reason: Reason = None, if_match: IfMatch = None
) -> None:
    """The kill switch: the flag becomes DISABLED and apps fall back to their code defaults.

    Switch it back on with `reelout flags set KEY --state ENABLED`."""
    with admin_runtime() as rt:
        environment, edit = checked_environment(rt, env), _edit(reason, if_match)
        with rt.db.session() as session:
            written, _ = service.kill(session, rt.clock, environment, key, edit)
    _written(written, f"kill {key}")


@flags_app.command("rollout")
def rollout(
    key: FlagKey,
    percent: Annotated[int, typer.Argument(min=0, max=100, help="Percent of users, 0 to 100.")],
    env: Env = DEFAULT_ENV,
    variant: Annotated[
        str | None,
        typer.Option("--variant", help="The variant rolled out (default: the non-default one)."),
    ] = None,
    reason: Reason = None,
    if_match: IfMatch = None,
) -> None:
    """Set a flag's rollout percentage: its two-way `fractional` split (made when the flag has no
    targeting). Users keep their buckets, so raising it only adds users."""
    with admin_runtime() as rt:
        environment, edit = checked_environment(rt, env), _edit(reason, if_match)
        with rt.db.session() as session:
            written, _ = service.rollout(
                session, rt.clock, environment, key, percent, edit, variant
            )
    _written(written, f"rollout {key} {percent}%")


@flags_app.command("delete")
def delete(
    key: FlagKey,
    env: Env = DEFAULT_ENV,
    reason: Reason = None,
    if_match: IfMatch = None,
    yes: Yes = False,
) -> None:
    """Remove a flag from the environment (the old set stays as a revision)."""
    with admin_runtime() as rt:
        environment, edit = checked_environment(rt, env), _edit(reason, if_match)
        if not yes:
            typer.confirm(f"Delete {key} from {environment}?", abort=True, err=True)
        with rt.db.session() as session:
            written = service.delete_flag(session, rt.clock, environment, key, edit)
    _written(written, f"delete {key}")


def _import_preview(rt: Runtime, environment: str, file: Path, body: bytes) -> None:
    new = validation.check(validation.parse(body))
    with rt.db.read() as session:
        old = service.current(session, environment)
    title = f"{file} → {environment} (revision {old.revision}), dry run"
    _show_diff(title, service.summary(old.document(), new), service.diff(old.document(), new))


@flags_app.command("import")
def import_flags(
    file: Annotated[Path, typer.Argument(help="A flagd JSON file ('-': stdin).")],
    env: Env = DEFAULT_ENV,
    reason: Reason = None,
    if_match: IfMatch = None,
    dry_run: Annotated[bool, typer.Option(help="Validate and show the difference only.")] = False,
) -> None:
    """Replace the environment's flag set with FILE, stored byte for byte once it is valid."""
    with admin_runtime() as rt:
        environment, edit = checked_environment(rt, env), _edit(reason, if_match)
        body = _sized(rt, _read(file))
        if dry_run:
            _import_preview(rt, environment, file, body)
            return
        with rt.db.session() as session:
            written = service.put_flag_set(session, rt.clock, environment, body, edit)
    _written(written, f"import {file}")


def _still(if_match: str | None, preview: PromotionOut) -> None:
    """--if-match against the target as previewed."""
    now = service.etag(preview.target, preview.target_revision)
    if if_match is not None and not service.matches(if_match, now):
        raise PreconditionFailed(
            f"the flag set of {preview.target} changed since you read it (it is now {now})",
            code="STALE_FLAG_SET",
        )


def _promote(rt: Runtime, preview: PromotionOut, edit: service.Edit) -> PromotionOut:
    """Apply a promotion exactly as previewed: the target unchanged, the source too."""
    with rt.db.session() as session:
        return service.promote_as_previewed(
            session,
            rt.clock,
            preview.source,
            preview.target,
            edit,
            source_revision=preview.source_revision,
            target_revision=preview.target_revision,
        )


@flags_app.command("promote")
def promote(
    source: Annotated[str, typer.Argument(help="Copy from this environment…")],
    target: Annotated[str, typer.Argument(help="…to this one.")],
    dry_run: Annotated[bool, typer.Option(help="Only show the difference.")] = False,
    yes: Yes = False,
    reason: Reason = None,
    if_match: IfMatch = None,
    as_json: AsJson = False,
) -> None:
    """Make TARGET's flag set equal to SOURCE's, after showing the difference."""
    with admin_runtime() as rt:
        src, dst, edit = (
            checked_environment(rt, source),
            checked_environment(rt, target),
            _edit(reason, if_match),
        )
        with rt.db.read() as session:
            preview = service.promote(session, rt.clock, src, dst, edit, dry_run=True)
        _still(edit.if_match, preview)
        if not as_json:
            title = f"{src} (revision {preview.source_revision}) → {dst} (revision {preview.target_revision})"
            _show_diff(title, preview.summary, preview.patch)
        if dry_run or not preview.patch:
            if as_json:
                typer.echo(_pretty(preview.model_dump(mode="json")))
            return
        if not yes:
            typer.confirm(f"Promote {src} to {dst}?", abort=True, err=True)
        done = _promote(rt, preview, edit)
    if as_json:
        typer.echo(_pretty(done.model_dump(mode="json")))
    else:
        console.print(
            f"promoted {escape(src)} to {escape(dst)}: now at revision {done.target_revision}"
        )


@flags_app.command("revert")
def revert(
    revision: Annotated[int, typer.Argument(help="The revision to go back to (see history).")],
    env: Env = DEFAULT_ENV,
    reason: Reason = None,
    if_match: IfMatch = None,
) -> None:
    """Make an earlier revision current again (stored as a new revision)."""
    with admin_runtime() as rt:
        environment, edit = checked_environment(rt, env), _edit(reason, if_match)
        with rt.db.session() as session:
            written = service.revert(session, rt.clock, environment, revision, edit)
    _written(written, f"revert to revision {revision}")


@flags_app.command("init")
def init(
    template: Annotated[str, typer.Option(help=f"The template: {', '.join(templates.TEMPLATES)}.")],
    force: Annotated[
        bool, typer.Option(help="Replace existing flags (the old sets stay as revisions).")
    ] = False,
    reason: Reason = None,
) -> None:
    """Create a template's flags in every environment (refused where flags exist, unless --force)."""
    with admin_runtime() as rt:
        edit, environments = _edit(reason), rt.settings.environments
        with rt.db.session() as session:
            out = service.init_template(
                session, rt.clock, template, environments, edit, force=force
            )
    table = Table("environment", "revision", "changed", title=f"template {out.template}")
    for done in out.environments:
        table.add_row(Text(done.environment), str(done.revision), "yes" if done.changed else "no")
    console.print(table)
