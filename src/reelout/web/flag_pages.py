"""The console's Flags page: an environment's flags with toggle, kill switch, rollout
percentage, and one flag's JSON editor; every action through the flag admin service."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import RedirectResponse

from reelout.context import Signing
from reelout.deps import SigningDep
from reelout.errors import BadRequest, ReeloutError
from reelout.flags.admin import service
from reelout.web.flag_rows import FlagRow, flag_split, one_line, slug
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
SECTION = "flags"
STATES = ("ENABLED", "DISABLED")

Reason = Annotated[str, Form(max_length=service.MAX_REASON_CHARS)]


def _env(rt: Signing, env: str) -> str:
    return service.check_environment(env, rt.settings.environments)


def _edit(viewer: Viewer, reason: str | None, if_match: str | None = None) -> service.Edit:
    return service.Edit(viewer.who, service.check_reason(reason), if_match)


def flag_row(key: str, flag: dict[str, Any]) -> FlagRow:
    targeting = flag.get("targeting")
    share = service.rollout_share(flag)
    return FlagRow(key, slug(key), flag, one_line(targeting), flag_split(flag), share)


def _row(request: Request, rt: Signing, env: str, key: str, flag: dict[str, Any]) -> Response:
    context = {"env": env, "row": flag_row(key, flag)}
    return render(request, rt, "_flag_row.html", context)


@router.get("/flags")
def flags_home(rt: SigningDep, _: PageViewer, env: str | None = None) -> Response:
    """The Flags page of `?env=` (the tab bar's picker) or of the first environment."""
    target = env or rt.settings.environments[0]
    return RedirectResponse(f"{PREFIX}/flags/{target}", status_code=303)


@router.get("/flags/{env}")
def flags_page(request: Request, env: str, rt: SigningDep, viewer: PageViewer) -> Response:
    """The environment's flags: state, variants, default, targeting, split, actions."""
    environment = _env(rt, env)
    with rt.db.read() as session:
        flag_set = service.current(session, environment)
    flags = flag_set.document().get("flags", {})
    context = {
        "env": environment,
        "environments": rt.settings.environments,
        "tab": "",
        "flag_set": flag_set,
        "rows": [flag_row(key, flag) for key, flag in flags.items()],
    }
    return render(request, rt, "flags.html", context, viewer=viewer, section=SECTION)


@router.post("/flags/{env}/{key}/toggle")
def toggle(
    request: Request,
    env: str,
    key: str,
    rt: SigningDep,
    viewer: ActionViewer,
    state: Annotated[str, Form()],
    reason: Reason = "",
) -> Response:
    """Switch a flag on or off: the API's `PATCH …/flags/{key}` with `{"state": …}`."""
    if state not in STATES:
        raise BadRequest(f"the state is ENABLED or DISABLED, not {state!r}", code="INVALID_STATE")
    environment, body = _env(rt, env), json.dumps({"state": state}).encode()
    with rt.db.session() as session:
        _, flag = service.patch_flag(
            session, rt.clock, environment, key, body, _edit(viewer, reason)
        )
    return _row(request, rt, environment, key, flag)


@router.post("/flags/{env}/{key}/kill")
def kill(
    request: Request,
    env: str,
    key: str,
    rt: SigningDep,
    viewer: ActionViewer,
    reason: Reason = "",
) -> Response:
    """The kill switch, with the reason the console asks for: the API's `POST …/kill`."""
    if not reason.strip():
        raise BadRequest(
            "say why you kill the flag; it goes into the audit log", code="REASON_REQUIRED"
        )
    environment = _env(rt, env)
    with rt.db.session() as session:
        _, flag = service.kill(session, rt.clock, environment, key, _edit(viewer, reason))
    return _row(request, rt, environment, key, flag)


@router.post("/flags/{env}/{key}/rollout")
def rollout(
    request: Request,
    env: str,
    key: str,
    rt: SigningDep,
    viewer: ActionViewer,
    percent: Annotated[int, Form(ge=0, le=100)],
    variant: Annotated[str, Form()] = "",
    reason: Reason = "",
) -> Response:
    """The rollout percentage: the API's `POST …/rollout` (raising it only adds users)."""
    environment = _env(rt, env)
    with rt.db.session() as session:
        _, flag = service.rollout(
            session, rt.clock, environment, key, percent, _edit(viewer, reason), variant or None
        )
    return _row(request, rt, environment, key, flag)


def _editor(request: Request, rt: Signing, env: str, key: str, **context: Any) -> Response:
    """The editor form (a fragment): the text, the ETag it is based on, faults or what was saved."""
    status = context.pop("status", 200)
    base: dict[str, Any] = {"env": env, "key": key, "slug": slug(key), "faults": [], "saved": None}
    return render(request, rt, "_flag_editor.html", base | context, status=status)


@router.get("/flags/{env}/{key}/edit")
def edit_page(request: Request, env: str, key: str, rt: SigningDep, viewer: PageViewer) -> Response:
    """One flag's flagd JSON in a text area, saved with the ETag it was read at."""
    environment = _env(rt, env)
    with rt.db.read() as session:
        flag_set, flag = service.get_flag(session, environment, key)
    context = {
        "env": environment,
        "key": key,
        "slug": slug(key),
        "environments": rt.settings.environments,
        "tab": "",
        "text": json.dumps(flag, indent=2, ensure_ascii=False),
        "etag": flag_set.etag,
        "faults": [],
        "saved": None,
    }
    return render(request, rt, "flag_edit.html", context, viewer=viewer, section=SECTION)


def faults_in_flag(exc: ReeloutError, key: str) -> list[dict[str, str]]:
    """An invalid set's faults, each pointer made relative to the flag being edited."""
    prefix = "/flags/" + key.replace("~", "~0").replace("/", "~1")
    out = []
    for fault in exc.details.get("errors", []):
        pointer = str(fault["pointer"])
        inside = pointer == prefix or pointer.startswith(prefix + "/")
        out.append(
            {
                "pointer": (pointer.removeprefix(prefix) or "/") if inside else pointer or "/",
                "message": str(fault["message"]),
            }
        )
    return out


@router.post("/flags/{env}/{key}/edit")
def save_flag(
    request: Request,
    env: str,
    key: str,
    rt: SigningDep,
    viewer: ActionViewer,
    definition: Annotated[str, Form()],
    etag: Annotated[str, Form()] = "",
    reason: Reason = "",
) -> Response:
    """Save the flag (the API's `PUT …/flags/{key}` with If-Match); faults show at their
    JSON pointers next to the text area."""
    environment = _env(rt, env)
    edit = _edit(viewer, reason, etag or None)
    refuse_deep_json(definition, rt.settings.json_max_depth)
    try:
        with rt.db.session() as session:
            written, _ = service.put_flag(
                session, rt.clock, environment, key, definition.encode(), edit
            )
    except ReeloutError as exc:
        if not exc.details.get("errors"):
            raise
        faults = faults_in_flag(exc, key)
        return _editor(
            request,
            rt,
            environment,
            key,
            text=definition,
            etag=etag,
            faults=faults,
            error=exc,
            status=exc.status,
        )
    return _editor(request, rt, environment, key, text=definition, etag=written.etag, saved=written)
