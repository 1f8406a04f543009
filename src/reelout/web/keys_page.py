"""The console's Keys page: list API keys, create one (its secret shown once), revoke one."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response

from reelout.auth import service
from reelout.auth.schemas import KeyCreated, Scope
from reelout.context import Signing
from reelout.deps import SigningDep
from reelout.web.pages import (
    PREFIX,
    ActionViewer,
    ConsoleRoute,
    PageViewer,
    PromptAnswer,
    Viewer,
    render,
)

router = APIRouter(prefix=PREFIX, include_in_schema=False, route_class=ConsoleRoute)


def _panel(
    request: Request,
    rt: Signing,
    viewer: Viewer,
    *,
    revoked: bool,
    created: KeyCreated | None = None,
) -> Response:
    """The keys table (and, after a create, the new key's secret, shown this once)."""
    with rt.db.read() as session:
        keys = service.list_keys(session, include_revoked=revoked)
    context = {"keys": keys, "created": created, "revoked": revoked, "scopes": list(Scope)}
    return render(request, rt, "_keys_panel.html", context, viewer=viewer)


@router.get("/keys")
def keys_page(
    request: Request, rt: SigningDep, viewer: PageViewer, revoked: bool = False
) -> Response:
    """Every API key: name, scope, environment, prefix, created, last used, revoked."""
    with rt.db.read() as session:
        keys = service.list_keys(session, include_revoked=revoked)
    context = {
        "keys": keys,
        "created": None,
        "revoked": revoked,
        "scopes": list(Scope),
        "environments": rt.settings.environments,
    }
    return render(request, rt, "keys.html", context, viewer=viewer, section="keys")


@router.post("/keys")
def create_key(
    request: Request,
    rt: SigningDep,
    viewer: ActionViewer,
    scope: Annotated[Scope, Form()],
    name: Annotated[str, Form(max_length=200)] = "",
    environment: Annotated[str, Form()] = "",
) -> Response:
    """POST /api/v1/keys's service, as the signed-in admin; the answer shows the secret once."""
    with rt.db.session() as session:
        created = service.create_key(
            session,
            rt.clock,
            viewer.who,
            scope=scope,
            name=name.strip(),
            environment=environment or None,
            environments=rt.settings.environments,
        )
    return _panel(request, rt, viewer, revoked=False, created=created)


@router.post("/keys/{key_id}/revoke")
def revoke_key(
    key_id: str,
    request: Request,
    rt: SigningDep,
    viewer: ActionViewer,
    reason: PromptAnswer,
    revoked: bool = False,
) -> Response:
    """DELETE /api/v1/keys/{id}'s service; the prompt's answer is the audit trail's reason."""
    with rt.db.session() as session:
        service.revoke_key(session, rt.clock, viewer.who, key_id, (reason or "").strip() or None)
    return _panel(request, rt, viewer, revoked=revoked)
