"""HTTP routes of alerts (admin keys): alerts and their history, rules (JSON or YAML bodies),
routing, silences, receivers and the delivery log."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response, status

from reelout.alerts import rules, service
from reelout.alerts.host import AlertsDep
from reelout.alerts.rules import RuleError
from reelout.alerts.schemas import (
    AlertList,
    ApplyOut,
    DeliveryOut,
    DeliveryPage,
    DeliveryState,
    HistoryPage,
    ReceiverCreated,
    ReceiverIn,
    ReceiverOut,
    RuleOut,
    SilenceIn,
    SilenceOut,
)
from reelout.auth.deps import AdminDep
from reelout.webhooks.secretbox import box_for

router = APIRouter(prefix="/api/v1/alerts", tags=["alerts"])
RULE_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"type": "object"}},
            "application/yaml": {"schema": {"type": "string"}},
        },
    }
}


async def _text(request: Request) -> Any:
    """The body as data, JSON or YAML whatever its Content-Type says."""
    return rules.load_text(await request.body())


Body = Annotated[Any, Depends(_text)]


@router.get("")
def list_alerts(
    rt: AlertsDep,
    _: AdminDep,
    state: Annotated[str | None, Query(description="Only alerts in this state.")] = None,
    rule: Annotated[str | None, Query(description="Only the alerts of this rule.")] = None,
) -> AlertList:
    """The alerts that are not inactive (pending, firing, recovering, resolved, nodata)."""
    with rt.db.read() as session:
        return service.list_alerts(session, rt.clock, state=state, rule=rule)


@router.get("/history")
def history(
    rt: AlertsDep,
    _: AdminDep,
    rule: str | None = None,
    fingerprint: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
) -> HistoryPage:
    with rt.db.read() as session:
        return service.history(
            session, rule=rule, fingerprint=fingerprint, limit=limit, cursor=cursor
        )


# ---- rules -------------------------------------------------------------------------------------


@router.get("/rules")
def list_rules(rt: AlertsDep, _: AdminDep) -> list[RuleOut]:
    with rt.db.read() as session:
        return service.list_rules(session)


@router.post("/rules", status_code=status.HTTP_201_CREATED, openapi_extra=RULE_BODY)
def create_rule(body: Body, rt: AlertsDep, who: AdminDep) -> RuleOut:
    """Create one rule (409 RULE_EXISTS if its id is taken)."""
    rule = rules.parse_rule(body)
    with rt.db.session() as session:
        return service.save_rule(
            session,
            rt.clock,
            who,
            rule,
            known=rt.alert_signals.known_metrics(),
            max_rules=rt.settings.alerts_max_rules,
            create_only=True,
        )[0]


@router.post("/rules/apply", openapi_extra=RULE_BODY)
def apply_rules(body: Body, rt: AlertsDep, who: AdminDep) -> ApplyOut:
    """Create or replace every rule of a document (`alert_rules`, `routing`); all or nothing."""
    document = rules.parse_document(body)
    with rt.db.session() as session:
        return service.apply_document(
            session,
            rt.clock,
            who,
            document,
            known=rt.alert_signals.known_metrics(),
            max_rules=rt.settings.alerts_max_rules,
        )


@router.get("/rules/{rule_id}")
def get_rule(rule_id: str, rt: AlertsDep, _: AdminDep) -> RuleOut:
    with rt.db.read() as session:
        return service.get_rule(session, rule_id)


@router.put("/rules/{rule_id}", openapi_extra=RULE_BODY)
def put_rule(rule_id: str, body: Body, rt: AlertsDep, who: AdminDep, reply: Response) -> RuleOut:
    """Create or replace the rule `rule_id` (201 when created)."""
    if isinstance(body, Mapping):
        body = {"id": rule_id, **body}
        if body["id"] != rule_id:
            raise RuleError(
                f"the body's id {body['id']!r} is not the URL's {rule_id!r}",
                code="RULE_ID_MISMATCH",
            )
    rule = rules.parse_rule(body)
    with rt.db.session() as session:
        out, created = service.save_rule(
            session,
            rt.clock,
            who,
            rule,
            known=rt.alert_signals.known_metrics(),
            max_rules=rt.settings.alerts_max_rules,
        )
    reply.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    return out


@router.delete("/rules/{rule_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_rule(rule_id: str, rt: AlertsDep, who: AdminDep) -> None:
    with rt.db.session() as session:
        service.delete_rule(session, rt.clock, who, rule_id)


@router.get("/routing")
def get_routing(rt: AlertsDep, _: AdminDep) -> dict[str, Any]:
    with rt.db.read() as session:
        return service.get_routing(session).model_dump(mode="json")


@router.put("/routing", openapi_extra=RULE_BODY)
def put_routing(body: Body, rt: AlertsDep, who: AdminDep) -> dict[str, Any]:
    """Replace grouping, waits and inhibition (the `routing` of a rules document)."""
    document = rules.parse_document({"routing": body})
    assert document.routing is not None
    with rt.db.session() as session:
        service.save_routing(session, rt.clock, who, document.routing)
    return document.routing.model_dump(mode="json")


# ---- silences ----------------------------------------------------------------------------------


@router.get("/silences")
def list_silences(
    rt: AlertsDep,
    _: AdminDep,
    expired: Annotated[bool, Query(description="Include ended silences.")] = False,
) -> list[SilenceOut]:
    with rt.db.read() as session:
        return service.list_silences(session, rt.clock, include_expired=expired)


@router.post("/silences", status_code=status.HTTP_201_CREATED)
def create_silence(body: SilenceIn, rt: AlertsDep, who: AdminDep) -> SilenceOut:
    settings = rt.settings
    with rt.db.session() as session:
        return service.create_silence(
            session,
            rt.clock,
            who,
            body,
            max_silences=settings.alerts_max_silences,
            max_days=settings.alerts_max_silence_days,
        )


@router.delete("/silences/{silence_id}")
def expire_silence(silence_id: str, rt: AlertsDep, who: AdminDep) -> SilenceOut:
    """End a silence now; it stays listed with `?expired=true`."""
    with rt.db.session() as session:
        return service.expire_silence(session, rt.clock, who, silence_id)


# ---- receivers and deliveries ------------------------------------------------------------------


@router.get("/receivers")
def list_receivers(rt: AlertsDep, _: AdminDep) -> list[ReceiverOut]:
    with rt.db.read() as session:
        return service.list_receivers(session, box_for(rt.secret))


@router.post("/receivers", status_code=status.HTTP_201_CREATED)
def create_receiver(body: ReceiverIn, rt: AlertsDep, who: AdminDep) -> ReceiverCreated:
    with rt.db.session() as session:
        return service.create_receiver(
            session,
            rt.clock,
            who,
            body,
            box=box_for(rt.secret),
            allow=rt.settings.webhook_allow_networks,
            max_receivers=rt.settings.alerts_max_receivers,
        )


@router.get("/receivers/{receiver_id}")
def get_receiver(receiver_id: str, rt: AlertsDep, _: AdminDep) -> ReceiverOut:
    with rt.db.read() as session:
        return service.get_receiver(session, receiver_id, box_for(rt.secret))


@router.delete("/receivers/{receiver_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_receiver(receiver_id: str, rt: AlertsDep, who: AdminDep) -> None:
    with rt.db.session() as session:
        service.delete_receiver(session, rt.clock, who, receiver_id)


@router.post("/receivers/{receiver_id}/test", status_code=status.HTTP_202_ACCEPTED)
def send_test(receiver_id: str, rt: AlertsDep, _: AdminDep) -> DeliveryOut:
    """Queue a test message to this receiver; see it in the delivery log."""
    with rt.db.session() as session:
        return service.send_test(
            session, rt.clock, receiver_id, max_attempts=rt.settings.alerts_delivery_attempts
        )


@router.get("/deliveries")
def list_deliveries(
    rt: AlertsDep,
    _: AdminDep,
    receiver: str | None = None,
    state: DeliveryState | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
) -> DeliveryPage:
    with rt.db.read() as session:
        return service.deliveries(
            session, receiver=receiver, state=state, limit=limit, cursor=cursor
        )
