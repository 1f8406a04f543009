"""`reelout webhooks`: endpoints (list, create, delete, rotate, test) and the delivery log
(deliveries, delivery, resend), calling the same services as /api/v1/webhooks and the console."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated

import typer
from pydantic import BaseModel, TypeAdapter
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from reelout.cli_common import (
    AsJson,
    ChangeReason,
    cli_principal,
    command_runtime,
    console,
    err_console,
    fail_with_hints,
)
from reelout.cli_common import table as cli_table
from reelout.flags.admin.service import seed_on_start
from reelout.runtime import Runtime
from reelout.webhooks import service
from reelout.webhooks.schemas import (
    MAX_PREVIOUS_SECRET_SECONDS,
    AttemptOut,
    DeliveryDetail,
    DeliveryOut,
    DeliveryState,
    EndpointCreated,
    EndpointOut,
)
from reelout.webhooks.secretbox import box_for

webhooks_app = typer.Typer(help="Webhook endpoints and their delivery log.", no_args_is_help=True)

HINTS = {
    "WEBHOOK_NOT_FOUND": "See the endpoints with `reelout webhooks list`.",
    "DELIVERY_NOT_FOUND": "See the deliveries with `reelout webhooks deliveries`.",
    "DELIVERY_PENDING": "See its attempts with `reelout webhooks delivery ID`.",
}

EndpointId = Annotated[str, typer.Argument(help="The endpoint's id (see `reelout webhooks list`).")]
DeliveryId = Annotated[
    str, typer.Argument(help="The delivery's id (see `reelout webhooks deliveries`).")
]
SHOWN_ONCE = "The signing secret is shown once; store it now (only a hint of it is kept):"


@contextmanager
def _webhooks() -> Iterator[Runtime]:
    with command_runtime(seed_on_start, exit_with=fail_with_hints(HINTS)) as rt:
        yield rt


def _echo_json(value: BaseModel | list[EndpointOut]) -> None:
    if isinstance(value, BaseModel):
        typer.echo(value.model_dump_json(indent=2))
    else:
        typer.echo(TypeAdapter(list[EndpointOut]).dump_json(value, indent=2).decode())


def _when(at: datetime | None) -> str:
    return "-" if at is None else f"{at:%Y-%m-%d %H:%M:%S}"


def _secret_once(created: EndpointCreated, what: str) -> None:
    console.print(f"{escape(what)} [bold]{escape(created.url)}[/bold] (id {created.id}).")
    err_console.print(f"[yellow]{SHOWN_ONCE}[/yellow]")
    typer.echo(created.secret)


# ---- endpoints ---------------------------------------------------------------------------------


@webhooks_app.command("list")
def list_endpoints(as_json: AsJson = False) -> None:
    """The endpoints: URL, events, description and a hint of the secret (never the secret)."""
    with _webhooks() as rt, rt.db.read() as session:
        endpoints = service.list_endpoints(session, box_for(rt.secret))
    if as_json:
        _echo_json(endpoints)
        return
    table = cli_table(
        "id", "url", "events", "description", "created (UTC)", "secret", whole=("id", "url")
    )
    for row in endpoints:
        table.add_row(
            row.id,
            Text(row.url),
            Text(", ".join(row.events)),
            Text(row.description or "-"),
            _when(row.created),
            Text(row.secret_hint or "unreadable: rotate it"),
        )
    if not endpoints:
        table.caption = "no endpoints: reelout webhooks create URL"
    console.print(table)


@webhooks_app.command("create")
def create(
    url: Annotated[str, typer.Argument(help="The absolute http(s) URL to POST events to.")],
    event: Annotated[
        list[str] | None,
        typer.Option("--event", help="An event type to receive (repeat it; default: every type)."),
    ] = None,
    description: Annotated[str, typer.Option(help="What the endpoint is for.")] = "",
) -> None:
    """Add an endpoint (POST /api/v1/webhooks); its signing secret is printed once."""
    with _webhooks() as rt, rt.db.session() as session:
        created = service.create_endpoint(
            session,
            rt.clock,
            cli_principal(),
            url=url,
            events=event or None,
            description=description,
            max_endpoints=rt.settings.webhook_max_endpoints,
            box=box_for(rt.secret),
            allow_networks=rt.settings.webhook_allow_networks,
        )
    _secret_once(created, "Created the endpoint")
    err_console.print(f"events: {escape(', '.join(created.events))}")


@webhooks_app.command("delete")
def delete(endpoint_id: EndpointId, reason: ChangeReason = None) -> None:
    """Remove an endpoint; its pending deliveries stop (DELETE /api/v1/webhooks/ID)."""
    with _webhooks() as rt, rt.db.session() as session:
        service.delete_endpoint(session, rt.clock, cli_principal(), endpoint_id, reason)
    console.print(f"deleted endpoint {endpoint_id}")


@webhooks_app.command("rotate")
def rotate(
    endpoint_id: EndpointId,
    expire_previous_in: Annotated[
        int,
        typer.Option(
            min=0,
            max=MAX_PREVIOUS_SECRET_SECONDS,
            help="Seconds deliveries are still signed with the old secret too (0: not at all).",
        ),
    ] = 86400,
) -> None:
    """A new signing secret, printed once (POST /api/v1/webhooks/ID/rotate-secret)."""
    with _webhooks() as rt, rt.db.session() as session:
        created = service.rotate_secret(
            session, rt.clock, cli_principal(), endpoint_id, expire_previous_in, box_for(rt.secret)
        )
    _secret_once(created, "New secret for")
    if expire_previous_in:
        err_console.print(f"the old secret signs too for {expire_previous_in} s more")


@webhooks_app.command("test")
def send_test(endpoint_id: EndpointId, as_json: AsJson = False) -> None:
    """Queue a signed `webhook.test` event to this endpoint only (POST /api/v1/webhooks/ID/test)."""
    with _webhooks() as rt, rt.db.session() as session:
        delivery = service.send_test(session, rt.clock, cli_principal(), endpoint_id)
    if as_json:
        _echo_json(delivery)
        return
    console.print(
        f"queued test delivery {delivery.id} to {escape(delivery.url)}; "
        f"see it with `reelout webhooks delivery {delivery.id}`"
    )


# ---- the delivery log --------------------------------------------------------------------------


def _answer(status: int | None, code: str | None, ms: int | None) -> str:
    parts = [str(status) if status is not None else "", code or "", f"{ms} ms" if ms else ""]
    return " ".join(p for p in parts if p) or "-"


def _state(delivery: DeliveryOut) -> Text:
    colour = {"delivered": "green", "failed": "red"}.get(delivery.state, "yellow")
    return Text(delivery.state.value, style=colour)


def _deliveries_table(deliveries: list[DeliveryOut]) -> Table:
    table = cli_table(
        "id",
        "event",
        "endpoint",
        "url",
        "state",
        "attempts",
        "last answer",
        "created (UTC)",
        whole=("id", "endpoint"),
    )
    for d in deliveries:
        answer = _answer(d.last_status, d.last_error_code, d.last_duration_ms)
        table.add_row(
            d.id,
            d.event_type,
            d.endpoint_id,
            Text(d.url),
            _state(d),
            str(d.attempts),
            answer,
            _when(d.created),
        )
    if not deliveries:
        table.caption = "no deliveries match"
    return table


@webhooks_app.command("deliveries")
def deliveries(
    endpoint: Annotated[str | None, typer.Option(help="Only this endpoint's deliveries.")] = None,
    state: Annotated[
        DeliveryState | None, typer.Option(help="Only deliveries in this state.")
    ] = None,
    video: Annotated[
        str | None, typer.Option(help="Only the deliveries of this video's events.")
    ] = None,
    event_type: Annotated[str | None, typer.Option(help="Only events of this type.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="How many deliveries.")] = 50,
    cursor: Annotated[str | None, typer.Option(help="The next page's cursor.")] = None,
    as_json: AsJson = False,
) -> None:
    """The delivery log, newest first (GET /api/v1/webhooks/deliveries)."""
    where = service.DeliveryFilter(event_type, endpoint, state, None, video)
    with _webhooks() as rt, rt.db.read() as session:
        page = service.list_deliveries(session, where, limit=limit, cursor=cursor)
    if as_json:
        _echo_json(page)
        return
    console.print(_deliveries_table(page.deliveries))
    if page.next_cursor:
        console.print(f"more deliveries: --cursor {page.next_cursor}")


def _attempts_table(attempts: list[AttemptOut]) -> Table:
    table = Table("#", "started (UTC)", "status", "error", "duration", "answer", title="attempts")
    for a in attempts:
        answer = (
            f"{a.response_content_type or '-'}, {a.response_bytes} bytes"
            if a.response_bytes
            else "-"
        )
        table.add_row(
            str(a.number),
            _when(a.started_at),
            "-" if a.status_code is None else str(a.status_code),
            Text(f"{a.error_code}: {a.error}" if a.error else "-"),
            f"{a.duration_ms} ms",
            Text(answer),
        )
    if not attempts:
        table.caption = "none yet"
    return table


def _delivery_lines(d: DeliveryDetail) -> None:
    console.print(f"[bold]{d.id}[/bold] {d.event_type} (event {d.event_id}) → {escape(d.url)}")
    console.print(_state(d), f"after {d.attempts} attempt(s); created {_when(d.created)} UTC")
    if d.failure_reason:
        console.print(Text(f"given up: {d.failure_reason}"))
    if d.next_attempt_at:
        console.print(f"next attempt at {_when(d.next_attempt_at)} UTC")
    console.print(_attempts_table(d.attempt_log))
    console.print("body:", Text(d.body))


@webhooks_app.command("delivery")
def delivery(delivery_id: DeliveryId, as_json: AsJson = False) -> None:
    """One delivery with its body and every attempt (GET /api/v1/webhooks/deliveries/ID)."""
    with _webhooks() as rt, rt.db.read() as session:
        detail = service.get_delivery(session, delivery_id)
    if as_json:
        _echo_json(detail)
        return
    _delivery_lines(detail)


@webhooks_app.command("resend")
def resend(delivery_id: DeliveryId, reason: ChangeReason = None) -> None:
    """Send a finished delivery again: same event id and body, one more attempt right away
    (POST /api/v1/webhooks/deliveries/ID/resend)."""
    with _webhooks() as rt, rt.db.session() as session:
        again = service.resend(session, rt.clock, cli_principal(), delivery_id, reason)
    console.print(f"resending {again.id} to {escape(again.url)} (state {again.state})")
