"""HTTP routes of rollouts (admin keys): create from a plan (JSON or YAML) or the seed's template,
list, get, operator commands, the log and the report."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, Request, status
from pydantic import BaseModel, Field

from reelout.auth.deps import AdminDep
from reelout.deps import ChangeReason, CoreDep
from reelout.rollouts import report, service
from reelout.rollouts.plan import plan_document, seed_template
from reelout.rollouts.schemas import LogPage, RolloutOut, RolloutPage, RolloutReportOut
from reelout.rollouts.states import Command, State

router = APIRouter(prefix="/api/v1/rollouts", tags=["rollouts"])


class CommandIn(BaseModel):
    """What a command carries (each optional; the command says which it needs)."""

    model_config = {"extra": "forbid"}

    reason: str | None = Field(None, description="Why: required by promote and dismiss.")
    metric: str | None = Field(None, description="dismiss: the guardrail metric.")
    stage: int | None = Field(None, description="approve: the stage index (default: the next).")
    version: int | None = Field(
        None, description="The rollout's version you acted on: 412 STALE_ROLLOUT if it moved."
    )


PLAN_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"type": "object"}},
            "application/yaml": {"schema": {"type": "string"}},
        },
    }
}


async def _plan(request: Request) -> dict[str, Any]:
    """The plan of a request (`plan_document`)."""
    return plan_document(await request.body())


PlanBody = Annotated[dict[str, Any], Depends(_plan)]


@router.post("", status_code=status.HTTP_201_CREATED, openapi_extra=PLAN_BODY)
def create(rt: CoreDep, who: AdminDep, plan: PlanBody) -> RolloutOut:
    """A pending rollout of the plan's flag; nothing is written to the flag until `start`."""
    with rt.db.session() as session:
        return service.create(session, rt.clock, plan, who, environments=rt.settings.environments)


class TemplateIn(BaseModel):
    model_config = {"extra": "forbid"}

    flag: str
    environment: str
    treatment: str = Field(description="The variant rolled out.")
    control: str = Field(description="The variant users keep (the old path).")


@router.post("/from-template", status_code=status.HTTP_201_CREATED)
def create_from_template(rt: CoreDep, who: AdminDep, body: TemplateIn) -> RolloutOut:
    """A pending rollout of the seed's template (10% -> 25% -> 50% -> 100%) for this flag."""
    plan = seed_template(body.flag, body.environment, body.treatment, body.control)
    with rt.db.session() as session:
        return service.create(
            session,
            rt.clock,
            plan.model_dump(mode="json"),
            who,
            environments=rt.settings.environments,
        )


@router.get("")
def list_rollouts(
    rt: CoreDep,
    _: AdminDep,
    environment: str | None = None,
    flag: str | None = None,
    state: Annotated[list[State] | None, Query(description="Any of these states.")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
) -> RolloutPage:
    """Newest first; pass `next_cursor` back as `cursor`."""
    states = tuple(s.value for s in state) if state else None
    where = service.RolloutFilter(environment=environment, flag=flag, states=states)
    with rt.db.read() as session:
        return service.list_rollouts(session, where, limit=limit, cursor=cursor)


@router.get("/{rollout_id}")
def get(rt: CoreDep, _: AdminDep, rollout_id: int) -> RolloutOut:
    with rt.db.read() as session:
        return service.get(session, rollout_id)


@router.get("/{rollout_id}/log")
def log(
    rt: CoreDep,
    _: AdminDep,
    rollout_id: int,
    kind: Annotated[str | None, Query(pattern="^(command|decision)$")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
    order: Annotated[
        str, Query(pattern="^(oldest|newest)$", description="newest: the latest entries first.")
    ] = "oldest",
) -> LogPage:
    """Oldest first from `cursor` on; `next_cursor` continues after the last entry given
    (with `order=newest`: the latest first, and `next_cursor` goes back in time)."""
    with rt.db.read() as session:
        return service.log_page(
            session, rollout_id, limit=limit, cursor=cursor, kind=kind,
            newest_first=order == "newest",
        )  # fmt: skip


@router.get("/{rollout_id}/report")
def rollout_report(rt: CoreDep, _: AdminDep, rollout_id: int) -> RolloutReportOut:
    """The rollout's report: plan, state, every stage's dates, duration, units and decisions,
    the seed's KPI table treatment against control from the first stage's start to the end (or
    now), the guardrails' latest verdicts, any frozen evidence and the whole log, oldest first."""
    return report.report_body(report.build(rt, rollout_id))


@router.post("/{rollout_id}/{command}")
def command(
    rt: CoreDep,
    who: AdminDep,
    rollout_id: int,
    command: Annotated[
        Command,
        Path(description="An operator's command (advance and complete are the controller's)."),
    ],
    reason_header: ChangeReason = None,
    body: Annotated[CommandIn | None, Body()] = None,
) -> RolloutOut:
    """start, pause, resume, promote, approve, abort, rollback or dismiss (400
    NOT_AN_OPERATOR_COMMAND for the controller's advance and complete)."""
    given = body or CommandIn()
    reason = given.reason if given.reason is not None else reason_header
    args = service.CommandArgs(command, reason, given.metric, given.stage)
    with rt.db.session() as session:
        return service.command(session, rt.clock, rollout_id, args, who, if_version=given.version)
