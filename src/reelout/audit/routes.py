"""HTTP route of the audit trail: every change (flags, keys, webhooks, videos) in one list.

The app mounts it behind the admin-key dependency (`include_router(..., dependencies=...)`) and
puts the change sources in `app.state.audit_sources`: the trail sits below the domains that
record into it, so it imports none of them (nor auth)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from reelout.audit import service
from reelout.audit.schemas import Area, ChangePage
from reelout.deps import CoreDep

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])


def change_sources(request: Request) -> Sequence[service.Source]:
    """Where changes are read from, as the app was composed."""
    sources: Sequence[service.Source] = request.app.state.audit_sources
    return sources


def utc(when: datetime | None) -> datetime | None:
    """A time given without an offset is read as UTC."""
    return when.replace(tzinfo=UTC) if when is not None and when.tzinfo is None else when


SourcesDep = Annotated[Sequence[service.Source], Depends(change_sources)]


@router.get("/all")
def list_changes(
    rt: CoreDep,
    sources: SourcesDep,
    actor: Annotated[str | None, Query(description="An API key's name or id.")] = None,
    area: Area | None = None,
    env: str | None = None,
    target: Annotated[str | None, Query(description="A key, webhook, video or flag id.")] = None,
    action: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
) -> ChangePage:
    """Every change, newest first: the flag audit log and the keys', webhooks' and videos'."""
    where = service.ChangeFilter(actor, area, env, target, action, utc(since), utc(until))
    with rt.db.read() as session:
        return service.list_changes(session, sources, where, limit=limit, cursor=cursor)
