"""The console's Audit page: every change (flags, keys, webhooks, videos) with who, why, when
and its JSON Patch, filtered and paged; read with the same service as GET /api/v1/audit/all."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from reelout.audit import service
from reelout.audit.routes import change_sources, utc
from reelout.audit.schemas import Area
from reelout.deps import SigningDep
from reelout.errors import BadRequest
from reelout.web.pages import PREFIX, ConsoleRoute, PageViewer, render

router = APIRouter(prefix=PREFIX, include_in_schema=False, route_class=ConsoleRoute)
PAGE_SIZE = 50
FILTERS = ("actor", "area", "env", "target", "since", "until")


def _when(name: str, value: str) -> datetime | None:
    """A filter's time (the form's datetime-local is read as UTC)."""
    if not value:
        return None
    try:
        return utc(datetime.fromisoformat(value))
    except ValueError:
        raise BadRequest(
            f"{name} must be a date and time; got {value!r}", code="INVALID_TIME"
        ) from None


def _area(value: str) -> Area | None:
    if not value:
        return None
    if value not in Area.__members__:
        known = ", ".join(Area.__members__)
        raise BadRequest(f"unknown area {value!r}; known: {known}", code="INVALID_AREA")
    return Area(value)


def _filter(given: dict[str, str]) -> service.ChangeFilter:
    return service.ChangeFilter(
        actor=given["actor"] or None,
        area=_area(given["area"]),
        environment=given["env"] or None,
        target=given["target"] or None,
        since=_when("since", given["since"]),
        until=_when("until", given["until"]),
    )


def patch_text(patch: list[dict[str, Any]]) -> str:
    """A JSON Patch to read: one operation a line."""
    lines = ",\n  ".join(json.dumps(op, ensure_ascii=False) for op in patch)
    return f"[\n  {lines}\n]" if patch else "[]"


@router.get("/audit")
def audit_page(
    request: Request,
    rt: SigningDep,
    viewer: PageViewer,
    sources: Annotated[Sequence[service.Source], Depends(change_sources)],
    cursor: str = "",
    limit: Annotated[int, Query(ge=1, le=500)] = PAGE_SIZE,
) -> Response:
    """Every change, newest first; `?actor=&area=&env=&target=&since=&until=` narrow it."""
    given = {name: request.query_params.get(name, "").strip() for name in FILTERS}
    with rt.db.read() as session:
        page = service.list_changes(
            session, sources, _filter(given), limit=limit, cursor=cursor or None
        )
    context: dict[str, Any] = {
        "page": page,
        "given": given,
        "areas": list(Area),
        "environments": rt.settings.environments,
        "limit": limit,
        "patch_text": patch_text,
    }
    return render(request, rt, "audit.html", context, viewer=viewer, section="audit")
