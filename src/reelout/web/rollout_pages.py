"""The console's Rollouts pages: the list with the forms that create a rollout (from the seed's
template or a pasted plan), and one rollout's timeline, guardrail charts, latest per-metric
verdicts, log and command buttons, every action through the rollouts service the API calls."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request, Response
from sqlalchemy.orm import Session

from reelout.context import Signing
from reelout.deps import SigningDep
from reelout.flags.admin import service as flags
from reelout.rollouts import service
from reelout.rollouts.plan import plan_document, seed_template, stored_plan
from reelout.rollouts.schemas import LogEntryOut, RolloutOut
from reelout.rollouts.states import Command
from reelout.web import rollout_views as views
from reelout.web.pages import (
    PREFIX,
    ActionViewer,
    ConsoleRoute,
    PageViewer,
    Viewer,
    refuse_deep_json,
    render,
)

router = APIRouter(prefix=PREFIX, include_in_schema=False, route_class=ConsoleRoute)
SECTION = "rollouts"
LIST_SHOWN = 25
LOG_SHOWN = 20
CHART_DECISIONS = 2000  # the charts draw at most the latest this many decisions
READ_CHUNK = 500

Text = Annotated[str, Form(max_length=255)]
Reason = Annotated[str, Form(max_length=service.MAX_REASON_CHARS)]


# ---- the list and creating ---------------------------------------------------------------------


@router.get("/rollouts")
def rollouts_page(
    request: Request,
    rt: SigningDep,
    viewer: PageViewer,
    cursor: Annotated[str | None, Query(description="The next page's cursor.")] = None,
) -> Response:
    """Every rollout, newest first, and the forms that create one."""
    settings = rt.settings
    environment = settings.console_flags_environment
    with rt.db.read() as session:
        page = service.list_rollouts(session, limit=LIST_SHOWN, cursor=cursor)
        known = sorted(flags.current(session, environment).document().get("flags", {}))
    context = {
        "rollouts": page.rollouts,
        "next_cursor": page.next_cursor,
        "paged": cursor is not None,
        "first_reason": views.first_reason,
        "environments": settings.environments,
        "default_environment": environment,
        "known_flags": known,
        "plan_example": PLAN_EXAMPLE,
    }
    return render(request, rt, "rollouts.html", context, viewer=viewer, section=SECTION)


def _created(made: RolloutOut) -> Response:
    """Off to the new rollout's page (htmx follows HX-Redirect)."""
    return Response(status_code=204, headers={"HX-Redirect": f"{PREFIX}/rollouts/{made.id}"})


@router.post("/rollouts/from-template")
def create_from_template(
    rt: SigningDep,
    viewer: ActionViewer,
    flag: Text,
    environment: Text,
    treatment: Text,
    control: Text,
) -> Response:
    """POST /api/v1/rollouts/from-template's service: the seed's plan for this flag."""
    plan = seed_template(flag.strip(), environment.strip(), treatment.strip(), control.strip())
    with rt.db.session() as session:
        made = service.create(
            session,
            rt.clock,
            plan.model_dump(mode="json"),
            viewer.who,
            environments=rt.settings.environments,
        )
    return _created(made)


@router.post("/rollouts/from-plan")
def create_from_plan(
    rt: SigningDep, viewer: ActionViewer, plan: Annotated[str, Form()] = ""
) -> Response:
    """POST /api/v1/rollouts's service on a pasted plan, YAML or JSON."""
    refuse_deep_json(plan, rt.settings.json_max_depth)
    document = plan_document(plan)
    with rt.db.session() as session:
        made = service.create(
            session, rt.clock, document, viewer.who, environments=rt.settings.environments
        )
    return _created(made)


# ---- one rollout -------------------------------------------------------------------------------


def _all(session: Session, rollout_id: int, kind: str, most: int) -> list[LogEntryOut]:
    """Up to the latest `most` log entries of a kind, oldest first (the service's cursor)."""
    found: list[LogEntryOut] = []
    cursor = None
    while len(found) < most:
        page = service.log_page(
            session,
            rollout_id,
            limit=min(READ_CHUNK, most - len(found)),
            cursor=cursor,
            kind=kind,
            newest_first=True,
        )
        found += page.entries
        if not page.more:
            break
        cursor = page.next_cursor
    return found[::-1]


def _live(session: Session, rollout_id: int) -> dict[str, Any]:
    """The part of a rollout's page the commands re-render: everything."""
    rollout = service.get(session, rollout_id)
    plan = stored_plan(rollout.plan)
    commands = _all(session, rollout_id, "command", CHART_DECISIONS)
    decisions = _all(session, rollout_id, "decision", CHART_DECISIONS)
    log = service.log_page(session, rollout_id, limit=LOG_SHOWN, newest_first=True)
    return {
        "rollout": rollout,
        "plan": plan,
        "stages": views.timeline(rollout, plan, commands),
        "metric_rows": views.metric_rows(rollout, plan),
        "guardrail_charts": views.guardrail_charts(plan, decisions),
        "decisions_charted": len(decisions),
        "chart_limit": CHART_DECISIONS,
        "first_reason": views.first_reason(rollout.last_decision),
        "log_rows": views.log_rows(log.entries),
        "log_more": log.more,
        "log_cursor": log.next_cursor,
        "buttons": views.offered(rollout),
        "guardrail_metrics": [g.metric for g in plan.guardrails],
        "next_stage": min(rollout.stage + 1, len(plan.stages) - 1),
    }


@router.get("/rollouts/{rollout_id}")
def rollout_page(request: Request, rollout_id: int, rt: SigningDep, viewer: PageViewer) -> Response:
    """The rollout: state, timeline, guardrail charts, per-metric verdicts, log, commands."""
    with rt.db.read() as session:
        context = _live(session, rollout_id) | {"notice": "", "charts": True}
    return render(request, rt, "rollout.html", context, viewer=viewer, section=SECTION)


@router.get("/rollouts/{rollout_id}/log")
def log_more(
    request: Request,
    rollout_id: int,
    rt: SigningDep,
    viewer: PageViewer,
    cursor: Annotated[str, Query(description="The cursor of the last entry shown.")],
) -> Response:
    """The log entries before the ones shown (newest first), and the button for more."""
    with rt.db.read() as session:
        log = service.log_page(
            session, rollout_id, limit=LOG_SHOWN, cursor=cursor, newest_first=True
        )
    context = {
        "rollout_id": rollout_id,
        "log_rows": views.log_rows(log.entries),
        "log_more": log.more,
        "log_cursor": log.next_cursor,
    }
    return render(request, rt, "_rollout_log_rows.html", context, viewer=viewer)


def _command_fragment(
    request: Request, rt: Signing, viewer: Viewer, rollout_id: int, notice: str
) -> Response:
    with rt.db.read() as session:
        context = _live(session, rollout_id) | {"notice": notice}
    return render(request, rt, "_rollout_live.html", context, viewer=viewer)


@router.post("/rollouts/{rollout_id}/{command}")
def command(
    request: Request,
    rollout_id: int,
    command: Command,
    rt: SigningDep,
    viewer: ActionViewer,
    reason: Reason = "",
    metric: Text = "",
    stage: Annotated[int | None, Form()] = None,
    version: Annotated[int | None, Form()] = None,
) -> Response:
    """POST /api/v1/rollouts/{id}/{command}'s service: the state machine refuses in words
    (409 ROLLOUT_STATE_CONFLICT; 400 NOT_AN_OPERATOR_COMMAND), shown where the button is."""
    args = service.CommandArgs(command, reason.strip() or None, metric or None, stage)
    with rt.db.session() as session:
        done = service.command(session, rt.clock, rollout_id, args, viewer.who, if_version=version)
    notice = (
        f"{command.value}: the rollout is {done.state} at stage {done.stage + 1} ({done.percent}%)."
    )
    return _command_fragment(request, rt, viewer, rollout_id, notice)


PLAN_EXAMPLE = """\
flag: use_tus_upload
environment: production
treatment: "on"
control: {variation: "off"}
stages:
  - {percent: 10, min_duration: 2h, min_units_per_arm: 500}
  - {percent: 50, min_duration: 1d}
  - {percent: 100, min_duration: 1d, monitor_only: true}
guardrails:
  - {metric: error_rate, role: guardrail, vs_control: {margin_abs: 0.0}}
"""
