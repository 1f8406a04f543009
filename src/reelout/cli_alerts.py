"""`reelout alerts`: alerts and their history, rules (apply a YAML/JSON file), silences,
receivers and the delivery log, calling the same services as /api/v1/alerts."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import BaseModel, TypeAdapter
from rich.markup import escape
from rich.text import Text

from reelout.alerts import defaults, rules, service
from reelout.alerts.routing import MatchOp
from reelout.alerts.schemas import (
    DeliveryState,
    MatcherIn,
    ReceiverIn,
    ReceiverKind,
    SilenceIn,
)
from reelout.cli_common import (
    AsJson,
    cli_principal,
    command_runtime,
    console,
    err_console,
    fail_with_hints,
    iso_time,
)
from reelout.cli_common import table as cli_table
from reelout.errors import ReeloutError
from reelout.flags.admin.service import seed_on_start
from reelout.rollouts.alerting import with_rollbacks
from reelout.runtime import Runtime
from reelout.webhooks.secretbox import box_for

alerts_app = typer.Typer(help="Alerts, alert rules, silences and receivers.", no_args_is_help=True)
rules_app = typer.Typer(help="Alert and digest rules.", no_args_is_help=True)
silence_app = typer.Typer(
    help="Silences: mute matching alerts until an end time.", no_args_is_help=True
)
receivers_app = typer.Typer(
    help="Where notifications go (JSON webhooks, Slack).", no_args_is_help=True
)
alerts_app.add_typer(rules_app, name="rules")
alerts_app.add_typer(silence_app, name="silence")
alerts_app.add_typer(receivers_app, name="receivers")

HINTS = {
    "RULE_NOT_FOUND": "See the rules with `reelout alerts rules list`.",
    "UNKNOWN_METRIC": "The metric catalogue names the metrics a rule can use.",
    "SILENCE_NOT_FOUND": "See the silences with `reelout alerts silence list --all`.",
    "RECEIVER_NOT_FOUND": "See the receivers with `reelout alerts receivers list`.",
}
Match = Annotated[
    list[str],
    typer.Option("--match", "-m", help="name=value or name!=value (repeat it: all must hold)."),
]


@contextmanager
def _alerts() -> Iterator[Runtime]:
    with command_runtime(
        seed_on_start, defaults.seed_on_start, exit_with=fail_with_hints(HINTS)
    ) as rt:
        rt.alert_signals = with_rollbacks(rt, rt.alert_signals)  # rules may name it
        yield rt


def _echo(value: Any) -> None:
    if isinstance(value, BaseModel):
        typer.echo(value.model_dump_json(indent=2))
    else:
        typer.echo(TypeAdapter(type(value)).dump_json(value, indent=2).decode())


def _when(at: datetime | None) -> str:
    return "-" if at is None else f"{at:%Y-%m-%d %H:%M:%S}"


def _labels(labels: dict[str, str]) -> Text:
    return Text(" ".join(f"{k}={v}" for k, v in sorted(labels.items()) if k != "alertname") or "-")


# ---- alerts ------------------------------------------------------------------------------------


@alerts_app.command("list")
def list_alerts(
    state: Annotated[str | None, typer.Option(help="Only this state (firing, pending, …).")] = None,
    rule: Annotated[str | None, typer.Option(help="Only this rule's alerts.")] = None,
    as_json: AsJson = False,
) -> None:
    """The alerts that are not inactive, and what mutes them (GET /api/v1/alerts)."""
    with _alerts() as rt, rt.db.read() as session:
        found = service.list_alerts(session, rt.clock, state=state, rule=rule)
    if as_json:
        _echo(found)
        return
    table = cli_table("rule", "state", "labels", "value", "since (UTC)", "muted", "summary")
    for a in found.alerts:
        muted = ("silenced " if a.silenced_by else "") + ("inhibited" if a.inhibited_by else "")
        value = "-" if a.value is None else f"{a.value:.4g}"
        table.add_row(
            a.rule, a.state, _labels(a.labels), value, _when(a.since), muted.strip() or "-",
            Text(a.annotations.get("summary", "")),
        )  # fmt: skip
    if not found.alerts:
        table.caption = "no alerts"
    console.print(table)


@alerts_app.command("history")
def history(
    rule: Annotated[str | None, typer.Option(help="Only this rule's changes.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 50,
    as_json: AsJson = False,
) -> None:
    """State changes, newest first (GET /api/v1/alerts/history)."""
    with _alerts() as rt, rt.db.read() as session:
        page = service.history(session, rule=rule, limit=limit)
    if as_json:
        _echo(page)
        return
    table = cli_table("at (UTC)", "rule", "labels", "from", "to", "value")
    for t in page.transitions:
        value = "-" if t.value is None else f"{t.value:.4g}"
        table.add_row(_when(t.at), t.rule, _labels(t.labels), t.from_state, t.to_state, value)
    console.print(table)


@alerts_app.command("deliveries")
def deliveries(
    receiver: Annotated[str | None, typer.Option(help="Only this receiver's.")] = None,
    state: Annotated[
        DeliveryState | None, typer.Option(help="pending, delivered or failed.")
    ] = None,
    as_json: AsJson = False,
) -> None:
    """The notification delivery log (GET /api/v1/alerts/deliveries)."""
    with _alerts() as rt, rt.db.read() as session:
        page = service.deliveries(session, receiver=receiver, state=state)
    if as_json:
        _echo(page)
        return
    table = cli_table("id", "receiver", "event", "status", "state", "attempts", "last answer",
                      "created (UTC)", whole=("id",))  # fmt: skip
    for d in page.deliveries:
        answer = " ".join(str(p) for p in (d.last_status, d.last_error_code) if p) or "-"
        table.add_row(d.id, d.receiver_id, d.event, d.status, d.state.value, str(d.attempts),
                      answer, _when(d.created_at))  # fmt: skip
    console.print(table)


# ---- rules -------------------------------------------------------------------------------------


@rules_app.command("list")
def rules_list(as_json: AsJson = False) -> None:
    """Every rule with its health (GET /api/v1/alerts/rules)."""
    with _alerts() as rt, rt.db.read() as session:
        found = service.list_rules(session)
    if as_json:
        _echo(found)
        return
    table = cli_table("id", "kind", "enabled", "metric", "severity", "last evaluated", "error")
    for r in found:
        table.add_row(
            r.id, r.kind, "yes" if r.enabled else "no", r.rule["signal"]["metric"],
            r.rule.get("severity", "-"), _when(r.last_eval_at), Text(r.last_error or "-"),
        )  # fmt: skip
    console.print(table)


@rules_app.command("show")
def rules_show(rule_id: Annotated[str, typer.Argument(help="The rule's id.")]) -> None:
    """One rule in the rule format, as JSON (GET /api/v1/alerts/rules/ID)."""
    with _alerts() as rt, rt.db.read() as session:
        _echo(service.get_rule(session, rule_id))


@rules_app.command("apply")
def rules_apply(
    file: Annotated[
        str, typer.Option("--file", "-f", help="A YAML or JSON rules document; - for stdin.")
    ],
) -> None:
    """Create or replace the rules (and routing) of a file, all or nothing
    (POST /api/v1/alerts/rules/apply)."""
    raw = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
    with _alerts() as rt:
        document = rules.parse_document(rules.load_text(raw))
        with rt.db.session() as session:
            out = service.apply_document(
                session,
                rt.clock,
                cli_principal(),
                document,
                known=rt.alert_signals.known_metrics(),
                max_rules=rt.settings.alerts_max_rules,
            )
    for word in ("created", "updated", "unchanged"):
        if ids := getattr(out, word):
            console.print(f"{word}: {escape(', '.join(ids))}")
    if out.routing != "absent":
        console.print(f"routing: {out.routing}")


@rules_app.command("delete")
def rules_delete(rule_id: Annotated[str, typer.Argument(help="The rule's id.")]) -> None:
    """Remove a rule and its alerts (DELETE /api/v1/alerts/rules/ID)."""
    with _alerts() as rt, rt.db.session() as session:
        service.delete_rule(session, rt.clock, cli_principal(), rule_id)
    console.print(f"deleted rule {escape(rule_id)}")


# ---- silences ----------------------------------------------------------------------------------


def _matcher(text: str) -> MatcherIn:
    name, op, value = text.partition("!=") if "!=" in text else text.partition("=")
    if not op or not name.strip():
        raise typer.BadParameter(f"{text!r} is not name=value or name!=value")
    return MatcherIn(name=name.strip(), value=value.strip(), op=MatchOp(op))


@silence_app.command("add")
def silence_add(
    match: Match,
    comment: Annotated[str, typer.Option("--comment", "-c", help="Why (shown with it).")],
    duration: Annotated[str | None, typer.Option(help="How long, e.g. 2h.")] = None,
    until: Annotated[str | None, typer.Option(help="When it ends (ISO 8601, UTC).")] = None,
    by: Annotated[str | None, typer.Option(help="Who asked for it (default: cli:<user>).")] = None,
    as_json: AsJson = False,
) -> None:
    """Mute the alerts matching every --match until an end time (POST /api/v1/alerts/silences)."""
    try:
        body = SilenceIn(
            matchers=[_matcher(m) for m in match],
            duration=duration,
            ends_at=None if until is None else iso_time(until),
            comment=comment,
            created_by=by,
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc).splitlines()[-1]) from None
    with _alerts() as rt, rt.db.session() as session:
        out = service.create_silence(
            session, rt.clock, cli_principal(), body,
            max_silences=rt.settings.alerts_max_silences,
            max_days=rt.settings.alerts_max_silence_days,
        )  # fmt: skip
    if as_json:
        _echo(out)
        return
    console.print(f"silence {out.id} until {_when(out.ends_at)} UTC ({out.state.value})")


@silence_app.command("list")
def silence_list(
    every: Annotated[bool, typer.Option("--all", help="Include ended silences.")] = False,
    as_json: AsJson = False,
) -> None:
    """Silences not yet ended (GET /api/v1/alerts/silences)."""
    with _alerts() as rt, rt.db.read() as session:
        found = service.list_silences(session, rt.clock, include_expired=every)
    if as_json:
        _echo(found)
        return
    table = cli_table("id", "matchers", "state", "ends (UTC)", "by", "comment", whole=("id",))
    for s in found:
        shown = " ".join(f"{m.name}{m.op.value}{m.value}" for m in s.matchers)
        table.add_row(s.id, Text(shown), s.state.value, _when(s.ends_at), Text(s.created_by),
                      Text(s.comment))  # fmt: skip
    console.print(table)


@silence_app.command("expire")
def silence_expire(silence_id: Annotated[str, typer.Argument(help="The silence's id.")]) -> None:
    """End a silence now (DELETE /api/v1/alerts/silences/ID)."""
    with _alerts() as rt, rt.db.session() as session:
        out = service.expire_silence(session, rt.clock, cli_principal(), silence_id)
    console.print(f"silence {out.id} ended at {_when(out.ends_at)} UTC")


# ---- receivers ---------------------------------------------------------------------------------


@receivers_app.command("list")
def receivers_list(as_json: AsJson = False) -> None:
    """The receivers (GET /api/v1/alerts/receivers); never their secrets."""
    with _alerts() as rt, rt.db.read() as session:
        found = service.list_receivers(session, box_for(rt.secret))
    if as_json:
        _echo(found)
        return
    table = cli_table("id", "kind", "url", "matchers", "resolved", "secret", whole=("url",))
    for r in found:
        table.add_row(r.id, r.kind.value, Text(r.url), _labels(r.matchers),
                      "yes" if r.send_resolved else "no", r.secret_hint or "-")  # fmt: skip
    console.print(table)


@receivers_app.command("add")
def receivers_add(
    receiver_id: Annotated[str, typer.Argument(help="A name, e.g. on-call.")],
    url: Annotated[str, typer.Option(help="Where to POST.")],
    kind: Annotated[
        ReceiverKind, typer.Option(help="webhook (signed JSON) or slack.")
    ] = ReceiverKind.webhook,
    match: Annotated[
        list[str] | None, typer.Option("--match", "-m", help="label=value alerts must have.")
    ] = None,
    resolved: Annotated[bool, typer.Option(help="Also tell when alerts resolve.")] = True,
    description: Annotated[str, typer.Option(help="What it is for.")] = "",
) -> None:
    """Add a receiver (POST /api/v1/alerts/receivers); a webhook's secret is printed once."""
    pairs = [_matcher(m) for m in match or []]
    if any(m.op is MatchOp.ne for m in pairs):
        raise typer.BadParameter("a receiver's matchers are label=value")
    with _alerts() as rt, rt.db.session() as session:
        try:
            body = ReceiverIn(id=receiver_id, kind=kind, url=url, send_resolved=resolved,
                              matchers={m.name: m.value for m in pairs}, description=description)  # fmt: skip
        except ValueError as exc:
            raise typer.BadParameter(str(exc).splitlines()[-1]) from None
        created = service.create_receiver(
            session, rt.clock, cli_principal(), body, box=box_for(rt.secret),
            allow=rt.settings.webhook_allow_networks,
            max_receivers=rt.settings.alerts_max_receivers,
        )  # fmt: skip
    console.print(f"Created receiver [bold]{escape(created.id)}[/bold] ({created.kind.value}).")
    if created.secret:
        err_console.print("[yellow]The signing secret is shown once; store it now:[/yellow]")
        typer.echo(created.secret)


@receivers_app.command("delete")
def receivers_delete(
    receiver_id: Annotated[str, typer.Argument(help="The receiver's id.")],
) -> None:
    """Remove a receiver (DELETE /api/v1/alerts/receivers/ID)."""
    with _alerts() as rt, rt.db.session() as session:
        service.delete_receiver(session, rt.clock, cli_principal(), receiver_id)
    console.print(f"deleted receiver {escape(receiver_id)}")


@receivers_app.command("test")
def receivers_test(receiver_id: Annotated[str, typer.Argument(help="The receiver's id.")]) -> None:
    """Queue a test message (POST /api/v1/alerts/receivers/ID/test)."""
    with _alerts() as rt, rt.db.session() as session:
        out = service.send_test(
            session, rt.clock, receiver_id, max_attempts=rt.settings.alerts_delivery_attempts
        )
    console.print(f"queued test delivery {out.id}; see `reelout alerts deliveries`")


__all__ = ["ReeloutError", "alerts_app"]
