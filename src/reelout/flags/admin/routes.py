"""HTTP routes of the flag admin: flag sets, flags, kill, rollout, promote, revert, revisions,
audit, init."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Header, Query, Request, Response, status
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from reelout.auth.deps import AdminDep
from reelout.context import Core
from reelout.deps import CoreDep
from reelout.flags.admin import service
from reelout.flags.admin.schemas import (
    AuditAction,
    AuditPage,
    EnvironmentOut,
    InitOut,
    PromotionOut,
    RevisionPage,
    RolloutIn,
    WriteOut,
)

router = APIRouter(prefix="/api/v1", tags=["flags"])
ENV = "/environments/{env}"
REASON_HEADER = "Reelout-Change-Reason"
JSON = "application/json"
JSON_BODY: dict[str, Any] = {
    "requestBody": {"required": True, "content": {JSON: {"schema": {"type": "object"}}}}
}

T = TypeVar("T")
ReasonHeader = Annotated[str | None, Header(alias=REASON_HEADER)]
IfMatch = Annotated[str | None, Header(alias="If-Match")]


def _env(rt: Core, env: str) -> str:
    return service.check_environment(env, rt.settings.environments)


def _edit(
    who: AdminDep,
    if_match: IfMatch = None,
    reason_header: ReasonHeader = None,
    reason: Annotated[
        str | None, Query(description="Why (or the Reelout-Change-Reason header).")
    ] = None,
) -> service.Edit:
    """Who makes a change, why (header or query), and the ETag it was based on (If-Match)."""
    return service.Edit(who, service.check_reason(reason_header or reason), if_match)


EditDep = Annotated[service.Edit, Depends(_edit)]


def _tagged(written: WriteOut, body: Any, status_code: int = 200) -> JSONResponse:
    return JSONResponse(body, status_code=status_code, headers={"ETag": written.etag})


def _utc(when: datetime | None) -> datetime | None:
    """A query's time; one without a zone is taken as UTC."""
    if when is None or when.tzinfo is not None:
        return when
    return when.replace(tzinfo=UTC)


async def _write(rt: Core, work: Callable[[Session], T]) -> T:
    def run() -> T:
        with rt.db.session() as session:
            return work(session)

    return await run_in_threadpool(run)


@router.get("/environments")
def list_environments(rt: CoreDep, _: AdminDep) -> list[EnvironmentOut]:
    with rt.db.read() as session:
        return service.environments(session, rt.settings.environments)


@router.get(ENV + "/flagset", response_class=Response)
def get_flag_set(
    env: str,
    rt: CoreDep,
    _: AdminDep,
    if_none_match: Annotated[str | None, Header(alias="If-None-Match")] = None,
) -> Response:
    with rt.db.read() as session:
        flag_set = service.current(session, _env(rt, env))
    headers = {"ETag": flag_set.etag}
    if if_none_match is not None and service.matches(if_none_match, flag_set.etag):
        return Response(status_code=304, headers=headers)
    return Response(flag_set.text, media_type=JSON, headers=headers)


@router.put(ENV + "/flagset", openapi_extra=JSON_BODY)
async def put_flag_set(
    env: str,
    request: Request,
    rt: CoreDep,
    edit: EditDep,
) -> JSONResponse:
    environment, body = _env(rt, env), await request.body()  # capped by flags.routes.body_rules
    written = await _write(rt, lambda s: service.put_flag_set(s, rt.clock, environment, body, edit))
    return _tagged(written, written.model_dump())


@router.get(ENV + "/revisions")
def list_revisions(
    env: str, rt: CoreDep, _: AdminDep, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> RevisionPage:
    with rt.db.read() as session:
        return service.list_revisions(session, _env(rt, env), limit)


@router.get(ENV + "/revisions/{revision}", response_class=Response)
def get_revision(env: str, revision: int, rt: CoreDep, _: AdminDep) -> Response:
    with rt.db.read() as session:
        row = service.get_revision(session, _env(rt, env), revision)
    return Response(row.document, media_type=JSON)


@router.post(ENV + "/revert/{revision}")
def revert(
    env: str,
    revision: int,
    rt: CoreDep,
    edit: EditDep,
) -> WriteOut:
    with rt.db.session() as session:
        return service.revert(session, rt.clock, _env(rt, env), revision, edit)


@router.get(ENV + "/flags/{key}")
def get_flag(env: str, key: str, rt: CoreDep, _: AdminDep) -> JSONResponse:
    with rt.db.read() as session:
        flag_set, flag = service.get_flag(session, _env(rt, env), key)
    return JSONResponse(flag, headers={"ETag": flag_set.etag})


@router.put(ENV + "/flags/{key}", openapi_extra=JSON_BODY)
async def put_flag(
    env: str,
    key: str,
    request: Request,
    rt: CoreDep,
    edit: EditDep,
) -> JSONResponse:
    environment, body = _env(rt, env), await request.body()  # capped by flags.routes.body_rules
    written, flag = await _write(
        rt, lambda s: service.put_flag(s, rt.clock, environment, key, body, edit)
    )
    return _tagged(written, flag)


@router.patch(ENV + "/flags/{key}", openapi_extra=JSON_BODY)
async def patch_flag(
    env: str,
    key: str,
    request: Request,
    rt: CoreDep,
    edit: EditDep,
) -> JSONResponse:
    environment, body = _env(rt, env), await request.body()  # capped by flags.routes.body_rules
    written, flag = await _write(
        rt, lambda s: service.patch_flag(s, rt.clock, environment, key, body, edit)
    )
    return _tagged(written, flag)


@router.delete(ENV + "/flags/{key}", status_code=status.HTTP_204_NO_CONTENT)
def delete_flag(
    env: str,
    key: str,
    rt: CoreDep,
    edit: EditDep,
) -> Response:
    with rt.db.session() as session:
        written = service.delete_flag(session, rt.clock, _env(rt, env), key, edit)
    return Response(status_code=204, headers={"ETag": written.etag})


@router.post(ENV + "/flags/{key}/kill")
def kill(
    env: str,
    key: str,
    rt: CoreDep,
    edit: EditDep,
) -> JSONResponse:
    with rt.db.session() as session:
        written, flag = service.kill(session, rt.clock, _env(rt, env), key, edit)
    return _tagged(written, flag)


@router.post(ENV + "/flags/{key}/rollout")
def rollout(
    env: str,
    key: str,
    body: RolloutIn,
    rt: CoreDep,
    edit: EditDep,
) -> JSONResponse:
    """Set the percentage of a two-way `fractional` split (made for a flag without targeting);
    users keep their buckets, so raising it only adds users."""
    with rt.db.session() as session:
        written, flag = service.rollout(
            session, rt.clock, _env(rt, env), key, body.percent, edit, body.variant
        )
    return _tagged(written, flag)


@router.post("/environments/{src}/promote/{dst}")
def promote(
    src: str,
    dst: str,
    rt: CoreDep,
    edit: EditDep,
    dry_run: bool = False,
) -> PromotionOut:
    source, target = _env(rt, src), _env(rt, dst)
    with rt.db.session() as session:
        return service.promote(session, rt.clock, source, target, edit, dry_run=dry_run)


@router.get("/audit")
def list_audit(
    rt: CoreDep,
    _: AdminDep,
    env: str | None = None,
    flag: str | None = None,
    actor: str | None = None,
    action: AuditAction | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
) -> AuditPage:
    if env is not None:
        _env(rt, env)
    where = service.AuditFilter(env, flag, actor, action, _utc(since), _utc(until))
    with rt.db.read() as session:
        return service.list_audit(session, where, limit=limit, cursor=cursor)


@router.post("/flags/init")
def init_template(
    rt: CoreDep,
    edit: EditDep,
    template: str,
    force: bool = False,
) -> InitOut:
    with rt.db.session() as session:
        return service.init_template(
            session, rt.clock, template, rt.settings.environments, edit, force=force
        )
