"""The flags tabs beside the table: revisions and revert, promote with its diff, scheduled changes,
the stale-flag report and exposures per variant per day, calling the services the API calls."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from reelout.context import Core, Signing
from reelout.deps import SigningDep
from reelout.errors import BadRequest
from reelout.flags.admin import service
from reelout.flags.admin.schemas import PromotionOut
from reelout.flags.engine import validation
from reelout.flags.exposures import service as exposures
from reelout.flags.exposures.routes import DEFAULT_DAYS
from reelout.flags.governance import schedules, stale_report
from reelout.flags.governance.schemas import ScheduleAction, ScheduleIn
from reelout.web.pages import (
    PREFIX,
    ActionViewer,
    ConsoleRoute,
    PageViewer,
    Viewer,
    refuse_deep_json,
    render,
)

router = APIRouter(
    prefix=PREFIX + "/flags/{env}", include_in_schema=False, route_class=ConsoleRoute
)
SECTION = "flags"  # the navigation entry these tabs belong to
REVISIONS_SHOWN = 50
SCHEDULES_SHOWN = 100
MAX_EXPOSURE_DAYS = 366
Reason = Annotated[str, Form()]


def _environment(rt: Core, env: str) -> str:
    return service.check_environment(env, rt.settings.environments)


def _tab(
    request: Request,
    rt: Signing,
    viewer: Viewer,
    env: str,
    tab: str,
    template: str,
    context: dict[str, Any],
) -> Response:
    """A page of the flags tabs: the tab bar's context, then the page's own."""
    tabs = {"env": env, "environments": rt.settings.environments, "tab": tab}
    return render(request, rt, template, tabs | context, viewer=viewer, section=SECTION)


def _reason(reason: str) -> str:
    """The console asks why for every change it makes; the audit log keeps it."""
    checked = service.check_reason(reason)
    if checked is None:
        raise BadRequest(
            "say why you make this change: the reason is kept in the audit log",
            code="REASON_REQUIRED",
        )
    return checked


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


# ---- revisions ---------------------------------------------------------------------------------


@router.get("/revisions")
def revisions_page(env: str, request: Request, rt: SigningDep, viewer: PageViewer) -> Response:
    """The environment's revisions, newest first, with who, why and which flags each changed."""
    environment = _environment(rt, env)
    where = service.AuditFilter(environment=environment)
    with rt.db.read() as session:
        revisions = service.list_revisions(session, environment, REVISIONS_SHOWN).revisions
        audit = service.list_audit(session, where, limit=REVISIONS_SHOWN).entries
    changes = {entry.revision: entry for entry in audit}
    rows = [(revision, changes.get(revision.revision)) for revision in revisions]
    head = revisions[0].revision if revisions else 0
    context = {"rows": rows, "head": head}
    return _tab(request, rt, viewer, environment, "/revisions", "flag_revisions.html", context)


def _document(session: Session, environment: str, revision: int) -> dict[str, Any]:
    """A revision's flag set (revision 0: the empty set before the first)."""
    text = (
        service.get_revision(session, environment, revision).document if revision else service.EMPTY
    )
    parsed: dict[str, Any] = json.loads(text)
    return parsed


@router.get("/revisions/{revision}")
def revision_page(
    env: str, revision: int, request: Request, rt: SigningDep, viewer: PageViewer
) -> Response:
    """One revision: its JSON Patch against the one before, and what reverting to it would do."""
    environment = _environment(rt, env)
    with rt.db.read() as session:
        row = service.get_revision(session, environment, revision)
        before = _document(session, environment, revision - 1)
        now = service.current(session, environment)
    document = json.loads(row.document)
    context = {
        "row": row,
        "summary": service.summary(before, document),
        "patch": _json(service.diff(before, document)),
        "head": now.revision,
        "undo": service.summary(now.document(), document),
        "undo_patch": _json(service.diff(now.document(), document)),
    }
    return _tab(request, rt, viewer, environment, "/revisions", "flag_revision.html", context)


@router.post("/revisions/{revision}/revert")
def revert(
    env: str,
    revision: int,
    request: Request,
    rt: SigningDep,
    viewer: ActionViewer,
    reason: Reason = "",
) -> Response:
    """POST /api/v1/environments/{env}/revert/{revision}, as the signed-in key, with a reason."""
    environment = _environment(rt, env)
    edit = service.Edit(viewer.who, _reason(reason))
    with rt.db.session() as session:
        written = service.revert(session, rt.clock, environment, revision, edit)
    context = {"env": environment, "revision": revision, "written": written}
    return render(request, rt, "_flag_reverted.html", context, viewer=viewer)


# ---- promote -----------------------------------------------------------------------------------


def next_environment(environments: list[str], source: str) -> str | None:
    """The environment after `source` in REELOUT_ENVIRONMENTS' order (None after the last)."""
    at = environments.index(source)
    return environments[at + 1] if at + 1 < len(environments) else None


@router.get("/promote")
def promote_page(
    env: str,
    request: Request,
    rt: SigningDep,
    viewer: PageViewer,
    to: Annotated[str | None, Query(description="The target environment.")] = None,
) -> Response:
    """Choose the target (the next environment by default) and see the difference first."""
    environment = _environment(rt, env)
    names = rt.settings.environments
    target = _environment(rt, to) if to else next_environment(names, environment)
    preview: PromotionOut | None = None
    if target is not None:
        with rt.db.read() as session:
            edit = service.Edit(viewer.who)
            preview = service.promote(session, rt.clock, environment, target, edit, dry_run=True)
    context = {
        "targets": [name for name in names if name != environment],
        "target": target,
        "preview": preview,
        "patch": _json(preview.patch) if preview else "",
    }
    return _tab(request, rt, viewer, environment, "/promote", "flag_promote.html", context)


@router.post("/promote/{target}")
def promote(
    env: str,
    target: str,
    request: Request,
    rt: SigningDep,
    viewer: ActionViewer,
    source_revision: Annotated[int, Form()],
    target_revision: Annotated[int, Form()],
    reason: Reason = "",
) -> Response:
    """POST /api/v1/environments/{env}/promote/{target}, exactly as previewed (412 when either
    set moved since the page was loaded), as the signed-in key, with a reason."""
    source, target = _environment(rt, env), _environment(rt, target)
    edit = service.Edit(viewer.who, _reason(reason))
    with rt.db.session() as session:
        done = service.promote_as_previewed(
            session,
            rt.clock,
            source,
            target,
            edit,
            source_revision=source_revision,
            target_revision=target_revision,
        )
    return render(request, rt, "_flag_promoted.html", {"done": done}, viewer=viewer)


# ---- scheduled changes -------------------------------------------------------------------------


def _schedule_list(request: Request, rt: Signing, viewer: Viewer, environment: str) -> Response:
    with rt.db.read() as session:
        found = schedules.list_schedules(session, environment, None, SCHEDULES_SHOWN).schedules
    context = {"env": environment, "schedules": found}
    return render(request, rt, "_flag_schedules.html", context, viewer=viewer)


@router.get("/schedules")
def schedules_page(env: str, request: Request, rt: SigningDep, viewer: PageViewer) -> Response:
    """Scheduled changes, soonest first, a form to schedule one and a cancel button per pending."""
    environment = _environment(rt, env)
    with rt.db.read() as session:
        found = schedules.list_schedules(session, environment, None, SCHEDULES_SHOWN).schedules
        flags = sorted(service.current(session, environment).document().get("flags", {}))
    now = rt.clock.now().astimezone(UTC).replace(second=0, microsecond=0, tzinfo=None)
    context = {
        "schedules": found,
        "flags": flags,
        "soon": (now + timedelta(hours=1)).isoformat(timespec="minutes"),
    }
    return _tab(request, rt, viewer, environment, "/schedules", "flag_schedules.html", context)


def _targeting(text: str) -> Any:
    try:
        return validation.parse(text)
    except BadRequest as exc:
        raise BadRequest(
            f"the targeting: {exc.message}; give a JSON Logic rule, or leave it empty",
            code=exc.code,
        ) from None


def _patch(
    session: Session, environment: str, flag: str, fields: dict[str, str]
) -> dict[str, Any] | None:
    """The flag's JSON Merge Patch from the form's fields (None when none is filled): the state,
    the default variant, and the targeting as the patch that turns today's into the new one."""
    patch: dict[str, Any] = {}
    if fields["state"]:
        patch["state"] = fields["state"]
    if fields["default_variant"].strip():
        patch["defaultVariant"] = fields["default_variant"].strip()
    if fields["targeting"].strip():
        new = _targeting(fields["targeting"])
        old = service.current(session, environment).document().get("flags", {}).get(flag, {})
        patch["targeting"] = service.merge_diff(old.get("targeting"), new)
    return patch or None


def _schedule_in(action: str, flag: str, apply_at: str, reason: str, patch: Any) -> ScheduleIn:
    try:
        return ScheduleIn.model_validate(
            {
                "flag": flag,
                "action": action,
                "apply_at": apply_at,
                "patch": patch,
                "reason": reason,
            }
        )
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
            for error in exc.errors()
        )
        raise BadRequest(f"the scheduled change is not complete: {problems}",
                         code="INVALID_SCHEDULE") from exc  # fmt: skip


@router.post("/schedules")
def create_schedule(
    env: str,
    request: Request,
    rt: SigningDep,
    viewer: ActionViewer,
    flag: Annotated[str, Form()] = "",
    action: Annotated[str, Form()] = ScheduleAction.patch.value,
    apply_at: Annotated[str, Form(description="UTC, as a datetime-local input gives it")] = "",
    state: Annotated[str, Form()] = "",
    default_variant: Annotated[str, Form()] = "",
    targeting: Annotated[str, Form()] = "",
    reason: Reason = "",
) -> Response:
    """POST /api/v1/environments/{env}/schedules, as the signed-in key, with a reason."""
    environment = _environment(rt, env)
    refuse_deep_json(targeting, rt.settings.json_max_depth)
    fields = {"state": state, "default_variant": default_variant, "targeting": targeting}
    with rt.db.session() as session:
        patch = _patch(session, environment, flag, fields)
        body = _schedule_in(action, flag, apply_at, _reason(reason), patch)
        most = rt.settings.flag_max_pending_schedules
        schedules.create(session, rt.clock, environment, body, viewer.who, max_pending=most)
    return _schedule_list(request, rt, viewer, environment)


@router.post("/schedules/{schedule_id}/cancel")
def cancel_schedule(
    env: str,
    schedule_id: int,
    request: Request,
    rt: SigningDep,
    viewer: ActionViewer,
    reason: Reason = "",
) -> Response:
    """DELETE /api/v1/environments/{env}/schedules/{id}, as the signed-in key, with a reason:
    a pending change will not apply."""
    environment = _environment(rt, env)
    with rt.db.session() as session:
        schedules.cancel(session, rt.clock, environment, schedule_id, viewer.who, _reason(reason))
    return _schedule_list(request, rt, viewer, environment)


# ---- the stale-flag report ---------------------------------------------------------------------


@router.get("/stale")
def stale_page(
    env: str,
    request: Request,
    rt: SigningDep,
    viewer: PageViewer,
    days: Annotated[int | None, Query(ge=1, le=36500)] = None,
) -> Response:
    """GET /api/v1/environments/{env}/flags/stale: flags serving one outcome to everyone."""
    environment = _environment(rt, env)
    days = days or rt.settings.flag_stale_days
    with rt.db.read() as session:
        report = stale_report.report(session, rt.clock, environment, days)
    context = {"report": report, "days": days}
    return _tab(request, rt, viewer, environment, "/stale", "flag_stale.html", context)


# ---- exposures ---------------------------------------------------------------------------------


def _midnight(day: date) -> int:
    return int(datetime.combine(day, time(), UTC).timestamp())


def exposure_chart(first: date, last: date, counts: list[exposures.DayCounts]) -> dict[str, Any]:
    """The `data-chart` JSON: every day of the range (none seen: 0), one series per variant."""
    variants = sorted({name for day in counts for name in day.variants})
    by_day = {day.day: day.variants for day in counts}
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    return {
        "series": [{"label": name} for name in variants],
        "x": [_midnight(day) for day in days],
        "ys": [[by_day.get(day, {}).get(name, 0) for day in days] for name in variants],
    }


@router.get("/exposures")
def exposures_page(
    env: str,
    request: Request,
    rt: SigningDep,
    viewer: PageViewer,
    flag: Annotated[str | None, Query(description="The flag's key.")] = None,
    days: Annotated[int, Query(ge=1, le=MAX_EXPOSURE_DAYS)] = DEFAULT_DAYS,
) -> Response:
    """GET /api/v1/environments/{env}/exposures: distinct users per variant per day, charted."""
    environment = _environment(rt, env)
    last = exposures.utc_day(rt.clock.now())
    first = last - timedelta(days=days - 1)
    with rt.db.read() as session:
        flags = sorted(service.current(session, environment).document().get("flags", {}))
        chosen = flag or (flags[0] if flags else None)
        counts = (
            exposures.variant_counts(session, environment, chosen, first, last) if chosen else []
        )
    chart = exposure_chart(first, last, counts)
    context = {
        "flags": flags if chosen in flags or chosen is None else [chosen, *flags],
        "flag": chosen,
        "days": days,
        "first": first,
        "last": last,
        "counts": counts,
        "variants": [series["label"] for series in chart["series"]],
        "chart": chart,
        "charts": True,
    }
    return _tab(request, rt, viewer, environment, "/exposures", "flag_exposures.html", context)
