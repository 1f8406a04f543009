"""HTTP routes for webhooks: endpoints (create, list, get, delete, rotate, test) and the delivery
log (resend); every change is audited with the calling key."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from reelout.auth.deps import AdminDep
from reelout.deps import ChangeReason, SigningDep
from reelout.webhooks import service
from reelout.webhooks.schemas import (
    DeliveryDetail,
    DeliveryOut,
    DeliveryPage,
    DeliveryState,
    EndpointCreate,
    EndpointCreated,
    EndpointOut,
    SecretRotation,
)
from reelout.webhooks.secretbox import box_for

router = APIRouter(prefix="/api/v1/webhooks", tags=["webhooks"])


@router.post("", status_code=status.HTTP_201_CREATED)
def create_endpoint(body: EndpointCreate, rt: SigningDep, who: AdminDep) -> EndpointCreated:
    with rt.db.session() as session:
        return service.create_endpoint(
            session,
            rt.clock,
            who,
            url=body.url,
            events=body.events,
            description=body.description,
            max_endpoints=rt.settings.webhook_max_endpoints,
            box=box_for(rt.secret),
            allow_networks=rt.settings.webhook_allow_networks,
        )


@router.get("")
def list_endpoints(rt: SigningDep, _: AdminDep) -> list[EndpointOut]:
    with rt.db.read() as session:
        return service.list_endpoints(session, box_for(rt.secret))


@router.get("/deliveries")
def list_deliveries(
    rt: SigningDep,
    _: AdminDep,
    event_type: str | None = None,
    endpoint_id: str | None = None,
    state: DeliveryState | None = None,
    event_id: str | None = None,
    video_uid: Annotated[
        str | None, Query(description="Only the deliveries of this video's events.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
) -> DeliveryPage:
    where = service.DeliveryFilter(event_type, endpoint_id, state, event_id, video_uid)
    with rt.db.read() as session:
        return service.list_deliveries(session, where, limit=limit, cursor=cursor)


@router.get("/deliveries/{delivery_id}")
def get_delivery(delivery_id: str, rt: SigningDep, _: AdminDep) -> DeliveryDetail:
    with rt.db.read() as session:
        return service.get_delivery(session, delivery_id)


@router.post("/deliveries/{delivery_id}/resend", status_code=status.HTTP_202_ACCEPTED)
def resend(
    delivery_id: str, rt: SigningDep, who: AdminDep, reason: ChangeReason = None
) -> DeliveryOut:
    with rt.db.session() as session:
        return service.resend(session, rt.clock, who, delivery_id, reason)


@router.get("/{endpoint_id}")
def get_endpoint(endpoint_id: str, rt: SigningDep, _: AdminDep) -> EndpointOut:
    with rt.db.read() as session:
        return service.get_endpoint(session, endpoint_id, box_for(rt.secret))


@router.delete("/{endpoint_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_endpoint(
    endpoint_id: str, rt: SigningDep, who: AdminDep, reason: ChangeReason = None
) -> None:
    with rt.db.session() as session:
        service.delete_endpoint(session, rt.clock, who, endpoint_id, reason)


@router.post("/{endpoint_id}/test", status_code=status.HTTP_202_ACCEPTED)
def send_test(endpoint_id: str, rt: SigningDep, who: AdminDep) -> DeliveryOut:
    """Queue a signed `webhook.test` event to this endpoint only; see it in the delivery log."""
    with rt.db.session() as session:
        return service.send_test(session, rt.clock, who, endpoint_id)


@router.post("/{endpoint_id}/rotate-secret")
def rotate_secret(
    endpoint_id: str, rt: SigningDep, who: AdminDep, body: SecretRotation | None = None
) -> EndpointCreated:
    rotation = body or SecretRotation()
    with rt.db.session() as session:
        return service.rotate_secret(
            session,
            rt.clock,
            who,
            endpoint_id,
            rotation.expire_previous_in_seconds,
            box_for(rt.secret),
        )
