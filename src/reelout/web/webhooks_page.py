"""The console's Webhooks page: endpoints (create, delete, rotate the secret, send a test) and
the delivery log with each delivery's attempts (resend)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, Response

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
from reelout.webhooks import policy, service
from reelout.webhooks.schemas import DeliveryState, EndpointCreated, SecretRotation
from reelout.webhooks.secretbox import box_for

router = APIRouter(prefix=PREFIX, include_in_schema=False, route_class=ConsoleRoute)
PAGE_SIZE = 25


def _endpoints(
    request: Request, rt: Signing, viewer: Viewer, secret: EndpointCreated | None = None
) -> Response:
    """The endpoints table (and a secret just made, shown this once)."""
    with rt.db.read() as session:
        endpoints = service.list_endpoints(session, box_for(rt.secret))
    context = {"endpoints": endpoints, "created": secret}
    return render(request, rt, "_webhook_endpoints.html", context, viewer=viewer)


def _deliveries(rt: Signing, state: str, endpoint: str, cursor: str | None) -> dict[str, Any]:
    where = service.DeliveryFilter(
        endpoint_id=endpoint or None, state=DeliveryState(state) if state else None
    )
    with rt.db.read() as session:
        page = service.list_deliveries(session, where, limit=PAGE_SIZE, cursor=cursor or None)
    return {"page": page, "state": state, "endpoint": endpoint, "states": list(DeliveryState)}


@router.get("/webhooks")
def webhooks_page(
    request: Request,
    rt: SigningDep,
    viewer: PageViewer,
    state: str = "",
    endpoint: str = "",
    cursor: str = "",
) -> Response:
    """Endpoints and the delivery log (newest first, filtered by state and endpoint, paged)."""
    with rt.db.read() as session:
        endpoints = service.list_endpoints(session, box_for(rt.secret))
    context = {
        "endpoints": endpoints,
        "created": None,
        "event_types": policy.EVENT_TYPES,
        **_deliveries(rt, state, endpoint, cursor),
    }
    return render(request, rt, "webhooks.html", context, viewer=viewer, section="webhooks")


@router.post("/webhooks")
def create_endpoint(
    request: Request,
    rt: SigningDep,
    viewer: ActionViewer,
    url: Annotated[str, Form(max_length=policy.MAX_URL_CHARS)],
    events: Annotated[list[str] | None, Form()] = None,
    description: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    """POST /api/v1/webhooks's service; the answer shows the signing secret once."""
    with rt.db.session() as session:
        created = service.create_endpoint(
            session,
            rt.clock,
            viewer.who,
            url=url,
            events=events or None,
            description=description.strip(),
            max_endpoints=rt.settings.webhook_max_endpoints,
            box=box_for(rt.secret),
            allow_networks=rt.settings.webhook_allow_networks,
        )
    return _endpoints(request, rt, viewer, created)


@router.post("/webhooks/{endpoint_id}/delete")
def delete_endpoint(
    endpoint_id: str, request: Request, rt: SigningDep, viewer: ActionViewer, reason: PromptAnswer
) -> Response:
    """DELETE /api/v1/webhooks/{id}'s service; the prompt's answer is the audit reason."""
    with rt.db.session() as session:
        service.delete_endpoint(session, rt.clock, viewer.who, endpoint_id, _reason(reason))
    return _endpoints(request, rt, viewer)


@router.post("/webhooks/{endpoint_id}/rotate-secret")
def rotate_secret(
    endpoint_id: str, request: Request, rt: SigningDep, viewer: ActionViewer
) -> Response:
    """POST /api/v1/webhooks/{id}/rotate-secret's service, with the API's default overlap (the
    old secret keeps signing for a day)."""
    overlap = SecretRotation().expire_previous_in_seconds
    with rt.db.session() as session:
        rotated = service.rotate_secret(
            session, rt.clock, viewer.who, endpoint_id, overlap, box_for(rt.secret)
        )
    return _endpoints(request, rt, viewer, rotated)


@router.post("/webhooks/{endpoint_id}/test")
def send_test(endpoint_id: str, request: Request, rt: SigningDep, viewer: ActionViewer) -> Response:
    """POST /api/v1/webhooks/{id}/test's service; the delivery log shows it from now on."""
    with rt.db.session() as session:
        delivery = service.send_test(session, rt.clock, viewer.who, endpoint_id)
    context = {"message": f"Test delivery {delivery.id} queued to {delivery.url}."}
    return render(request, rt, "_notice.html", context, viewer=viewer)


@router.get("/webhooks/deliveries/{delivery_id}")
def delivery_attempts(
    delivery_id: str, request: Request, rt: SigningDep, viewer: PageViewer
) -> Response:
    """One delivery's attempts (status, error code, timing), as GET /api/v1/webhooks/deliveries/{id}."""
    with rt.db.read() as session:
        delivery = service.get_delivery(session, delivery_id)
    return render(request, rt, "_webhook_attempts.html", {"d": delivery}, viewer=viewer)


@router.post("/webhooks/deliveries/{delivery_id}/resend")
def resend(
    delivery_id: str, request: Request, rt: SigningDep, viewer: ActionViewer, reason: PromptAnswer
) -> Response:
    """POST /api/v1/webhooks/deliveries/{id}/resend's service: one more attempt right away."""
    with rt.db.session() as session:
        delivery = service.resend(session, rt.clock, viewer.who, delivery_id, _reason(reason))
    return render(request, rt, "_webhook_delivery_row.html", {"d": delivery}, viewer=viewer)


def _reason(given: str | None) -> str | None:
    return (given or "").strip() or None
