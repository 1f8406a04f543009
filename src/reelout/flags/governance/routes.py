"""HTTP routes of flag governance: scheduled changes and the stale-flag report (admin key)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from reelout.auth.deps import AdminDep
from reelout.context import Core
from reelout.deps import CoreDep
from reelout.flags.admin import service
from reelout.flags.admin.routes import REASON_HEADER
from reelout.flags.governance import schedules, stale_report
from reelout.flags.governance.schemas import (
    ScheduleIn,
    ScheduleOut,
    SchedulePage,
    ScheduleStatus,
    StaleReport,
)

router = APIRouter(prefix="/api/v1/environments/{env}", tags=["flags"])
SCHEDULE_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": ScheduleIn.model_json_schema()}},
    }
}


def _env(rt: Core, env: str) -> str:
    return service.check_environment(env, rt.settings.environments)


async def _schedule_in(request: Request) -> ScheduleIn:
    """The body, at most REELOUT_FLAG_SET_MAX_BYTES (it may carry a whole flag definition;
    flags.routes.body_rules refuses a larger one before it is read)."""
    body = await request.body()
    try:
        return ScheduleIn.model_validate_json(body or b"null")
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from None


@router.post("/schedules", status_code=201, openapi_extra=SCHEDULE_BODY)
async def create_schedule(env: str, request: Request, rt: CoreDep, who: AdminDep) -> ScheduleOut:
    environment, body = _env(rt, env), await _schedule_in(request)
    most = rt.settings.flag_max_pending_schedules

    def run() -> ScheduleOut:
        with rt.db.session() as session:
            return schedules.create(session, rt.clock, environment, body, who, max_pending=most)

    return await run_in_threadpool(run)


@router.get("/schedules")
def list_schedules(
    env: str,
    rt: CoreDep,
    _: AdminDep,
    status: ScheduleStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> SchedulePage:
    with rt.db.read() as session:
        return schedules.list_schedules(session, _env(rt, env), status, limit)


@router.get("/schedules/{schedule_id}")
def get_schedule(env: str, schedule_id: int, rt: CoreDep, _: AdminDep) -> ScheduleOut:
    with rt.db.read() as session:
        return schedules.get(session, _env(rt, env), schedule_id)


@router.delete("/schedules/{schedule_id}")
def cancel_schedule(
    env: str,
    schedule_id: int,
    rt: CoreDep,
    who: AdminDep,
    reason_header: Annotated[str | None, Header(alias=REASON_HEADER)] = None,
    reason: Annotated[
        str | None, Query(description="Why (or the Reelout-Change-Reason header); optional.")
    ] = None,
) -> ScheduleOut:
    """Cancel a pending change; the schedule records who canceled it, and why if given."""
    with rt.db.session() as session:
        return schedules.cancel(
            session, rt.clock, _env(rt, env), schedule_id, who, reason_header or reason
        )


@router.get("/flags/stale")
def stale_flags(
    env: str,
    rt: CoreDep,
    _: AdminDep,
    days: Annotated[
        int | None, Query(ge=1, le=36500, description="Default: REELOUT_FLAG_STALE_DAYS.")
    ] = None,
) -> StaleReport:
    with rt.db.read() as session:
        return stale_report.report(
            session, rt.clock, _env(rt, env), days or rt.settings.flag_stale_days
        )
