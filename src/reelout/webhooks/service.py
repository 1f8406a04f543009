"""Webhook logic: endpoints, `emit` (events + deliveries + jobs in the caller's transaction),
the attempt bookkeeping of the delivery job, the delivery log, resends and pruning."""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pydantic_core
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from reelout import __version__
from reelout.audit import service as audit
from reelout.audit.service import Actor, Target
from reelout.clock import Clock
from reelout.db.paging import decode_cursor, encode_cursor
from reelout.errors import BadRequest, Conflict, NotFound
from reelout.jobs import service as jobs
from reelout.webhooks import addresses, policy, signing
from reelout.webhooks.addresses import IPNetwork
from reelout.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookEvent
from reelout.webhooks.schemas import (
    AttemptOut,
    DeliveryDetail,
    DeliveryOut,
    DeliveryPage,
    DeliveryState,
    EndpointCreated,
    EndpointOut,
)
from reelout.webhooks.secretbox import SecretBox, SecretUnreadable, is_sealed
from reelout.webhooks.sender import AttemptResult, Request

DELIVER_JOB = "webhooks.deliver"
PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"  # DeliveryState values
USER_AGENT = f"Reelout-Webhooks/{__version__}"
SECRET_PREFIX = "whsec_"  # noqa: S105 (the type prefix, not a secret)
ADDRESS_NOT_ALLOWED = "WEBHOOK_ADDRESS_NOT_ALLOWED"  # also pinning.AddressRefused.code
TEST_EVENT = "webhook.test"  # sent to one endpoint on request, whatever it subscribes to


# ---- ids, secrets, bodies ----------------------------------------------------------------------


def _new_id(prefix: str) -> str:
    return prefix + secrets.token_hex(12)


def new_secret() -> str:
    """A signing secret: `whsec_` and 256 random bits, URL-safe base64."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def _iso(when: datetime) -> str:
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def event_body(event_id: str, event_type: str, created: datetime, data: Mapping[str, Any]) -> str:
    """The JSON every attempt sends: compact, keys in a fixed order, `data` as given."""
    envelope = {"id": event_id, "type": event_type, "created": _iso(created), "data": dict(data)}
    return pydantic_core.to_json(envelope).decode("utf-8")


# ---- endpoints ---------------------------------------------------------------------------------


def secret_hint(secret: str) -> str:
    """What is shown of a secret after its creation: its type prefix and 4 characters."""
    return f"{SECRET_PREFIX}{secret.removeprefix(SECRET_PREFIX)[:4]}…"


def _hint(row: WebhookEndpoint, box: SecretBox) -> str | None:
    try:
        return secret_hint(box.open(row.secret))
    except SecretUnreadable:
        return None


def _endpoint_out(row: WebhookEndpoint, hint: str | None) -> EndpointOut:
    return EndpointOut(
        id=row.id,
        url=row.url,
        events=list(row.events),
        description=row.description,
        created=row.created_at,
        secret_hint=hint,
    )


def _audited(row: WebhookEndpoint) -> dict[str, Any]:
    """What the audit trail's JSON Patch shows of an endpoint (never its secret)."""
    return {"url": row.url, "events": list(row.events), "description": row.description}


def _created(row: WebhookEndpoint, secret: str) -> EndpointCreated:
    out = _endpoint_out(row, secret_hint(secret))
    return EndpointCreated(**out.model_dump(), secret=secret)


def _check_address(url: str, allow: Iterable[IPNetwork]) -> None:
    """Refuse a URL whose host names an address webhooks may not reach (no lookup is made: a
    host name is judged at every connect, see pinning)."""
    host = urlsplit(url).hostname or ""
    address = addresses.literal(host)
    why = None if address is None else addresses.refusal(address, allow)
    if address is not None and why is not None:
        raise BadRequest(
            f"{url!r} points at {address}, which is not allowed: {why}. Webhooks only go to "
            "public addresses; an operator can allow a network with "
            "REELOUT_WEBHOOK_ALLOW_NETWORKS (e.g. 10.0.0.0/8)",
            code=ADDRESS_NOT_ALLOWED,
            details={"address": str(address), "reason": why},
        )


def _checked_url(url: str, allow: Iterable[IPNetwork]) -> str:
    problem = policy.url_problem(url.strip())
    if problem is not None:
        raise BadRequest(f"{problem}; got {url!r}", code="INVALID_WEBHOOK_URL")
    _check_address(url.strip(), allow)
    return url.strip()


def _checked_events(events: list[str] | None) -> list[str]:
    if events is None:
        return [policy.ALL_EVENTS]
    if not events:
        raise BadRequest('subscribe to at least one event type (or "*" for all)', code="NO_EVENTS")
    if unknown := policy.unknown_events(events):
        known = [*policy.EVENT_TYPES, policy.ALL_EVENTS]
        raise BadRequest(
            f"unknown event type(s) {', '.join(unknown)}; known: {', '.join(known)}",
            code="UNKNOWN_EVENT",
            details={"unknown": unknown, "known": known},
        )
    return list(dict.fromkeys(events))


def _active_endpoints(session: Session) -> list[WebhookEndpoint]:
    query = select(WebhookEndpoint).where(WebhookEndpoint.deleted_at.is_(None))
    return list(session.scalars(query.order_by(WebhookEndpoint.created_at, WebhookEndpoint.id)))


def _check_room(session: Session, max_endpoints: int) -> None:
    query = select(func.count()).where(WebhookEndpoint.deleted_at.is_(None))
    count = session.scalar(query.select_from(WebhookEndpoint)) or 0
    if count >= max_endpoints:
        raise Conflict(
            f"there are already {count} webhook endpoints, the most allowed "
            f"(REELOUT_WEBHOOK_MAX_ENDPOINTS={max_endpoints}); delete one first",
            code="WEBHOOK_LIMIT_REACHED",
            details={"max_endpoints": max_endpoints},
        )


def create_endpoint(
    session: Session,
    clock: Clock,
    who: Actor,
    *,
    url: str,
    events: list[str] | None = None,
    description: str = "",
    max_endpoints: int,
    box: SecretBox,
    allow_networks: Iterable[IPNetwork] = (),
) -> EndpointCreated:
    """Add an endpoint; the reply carries its signing secret, which is never shown again (it is
    stored sealed, and only a hint of it is listed)."""
    secret = new_secret()
    row = WebhookEndpoint(
        id=_new_id("we_"),
        url=_checked_url(url, allow_networks),
        events=_checked_events(events),
        description=description,
        secret=box.seal(secret),
        created_at=clock.now(),
    )
    _check_room(session, max_endpoints)
    session.add(row)
    session.flush()
    patch = audit.patch_of({}, _audited(row))
    audit.record(session, clock, who, "webhook.created", Target("webhook", row.id), patch=patch)
    return _created(row, secret)


def list_endpoints(session: Session, box: SecretBox) -> list[EndpointOut]:
    return [_endpoint_out(row, _hint(row, box)) for row in _active_endpoints(session)]


def _endpoint(session: Session, endpoint_id: str, *, lock: bool = True) -> WebhookEndpoint:
    row = session.get(WebhookEndpoint, endpoint_id, with_for_update=lock)
    if row is None or row.deleted_at is not None:
        raise NotFound(f"no webhook endpoint with id {endpoint_id!r}", code="WEBHOOK_NOT_FOUND")
    return row


def get_endpoint(session: Session, endpoint_id: str, box: SecretBox) -> EndpointOut:
    row = _endpoint(session, endpoint_id, lock=False)
    return _endpoint_out(row, _hint(row, box))


def delete_endpoint(
    session: Session, clock: Clock, who: Actor, endpoint_id: str, reason: str | None = None
) -> None:
    """Remove an endpoint; its pending deliveries stop now (failed, "endpoint deleted")."""
    row = _endpoint(session, endpoint_id)
    now = clock.now()
    row.deleted_at = now
    patch = audit.patch_of(_audited(row), {})
    target = Target("webhook", row.id)
    audit.record(session, clock, who, "webhook.deleted", target, reason=reason, patch=patch)
    pending = select(WebhookDelivery).where(
        WebhookDelivery.endpoint_id == endpoint_id, WebhookDelivery.state == PENDING
    )
    for delivery in list(session.scalars(pending)):
        _give_up(delivery, f"the endpoint was deleted at {_iso(now)}")


def _readable(stored: str, box: SecretBox) -> bool:
    try:
        box.open(stored)
    except SecretUnreadable:
        return False
    return True


def _previous_expiry(row: WebhookEndpoint) -> dict[str, Any]:
    """Of a rotation, the audit trail shows until when the old secret still signs."""
    expires = row.previous_secret_expires_at
    return {"previous_secret_expires_at": None if expires is None else _iso(expires)}


def rotate_secret(
    session: Session,
    clock: Clock,
    who: Actor,
    endpoint_id: str,
    expire_previous_in_seconds: int,
    box: SecretBox,
) -> EndpointCreated:
    """A new signing secret; the old one keeps signing too (a second `v1=`) for a while, unless
    it can no longer be read (the server secret changed), which is what rotation then repairs."""
    row = _endpoint(session, endpoint_id)
    before = _previous_expiry(row)
    keep = expire_previous_in_seconds > 0 and _readable(row.secret, box)
    row.previous_secret = box.seal(box.open(row.secret)) if keep else None
    row.previous_secret_expires_at = (
        clock.now() + timedelta(seconds=expire_previous_in_seconds) if keep else None
    )
    secret = new_secret()
    row.secret = box.seal(secret)
    patch = audit.patch_of(before, _previous_expiry(row))
    audit.record(
        session, clock, who, "webhook.secret_rotated", Target("webhook", row.id), patch=patch
    )
    return _created(row, secret)


def seal_clear_secrets(session: Session, box: SecretBox) -> int:
    """Encrypt the secrets still stored in clear (from before encryption); returns how many.

    Only here, with the endpoints locked (never while a delivery is locked too, so no lock is
    ever taken in the opposite order); until then a clear secret still signs as it is."""
    count = 0
    for row in session.scalars(select(WebhookEndpoint).with_for_update()):
        if not is_sealed(row.secret):
            row.secret, count = box.seal(row.secret), count + 1
        if row.previous_secret is not None and not is_sealed(row.previous_secret):
            row.previous_secret, count = box.seal(row.previous_secret), count + 1
    return count


# ---- emit --------------------------------------------------------------------------------------


def emit(
    session: Session,
    clock: Clock,
    event_type: str,
    data: Mapping[str, Any],
    *,
    video_uid: str | None = None,
) -> str:
    """Record an event and queue its delivery to every subscribed endpoint; returns the event id.

    Call it inside the transaction that makes the change the event reports: the event exists,
    and is sent, if and only if that transaction commits. `data` must be JSON-serialisable
    (datetimes, enums and pydantic models are fine). The body is fixed here, once. `video_uid`
    names the video the event is about (the delivery log filters by it)."""
    if event_type not in policy.EVENT_TYPES:
        raise ValueError(f"unknown webhook event type {event_type!r}; known: {policy.EVENT_TYPES}")
    now = clock.now()
    event = WebhookEvent(id=_new_id("evt_"), type=event_type, created_at=now, video_uid=video_uid)
    event.body = event_body(event.id, event_type, now, data)
    session.add(event)
    session.flush()
    for endpoint in _active_endpoints(session):
        if policy.subscribed(endpoint.events, event_type):
            _queue_delivery(session, clock, event, endpoint)
    session.flush()
    return event.id


def _queue_delivery(
    session: Session, clock: Clock, event: WebhookEvent, endpoint: WebhookEndpoint
) -> None:
    delivery = WebhookDelivery(
        id=_new_id("wd_"),
        event_id=event.id,
        endpoint_id=endpoint.id,
        url=endpoint.url,
        state=PENDING,
        attempts=0,
        created_at=event.created_at,
    )
    session.add(delivery)
    session.flush()
    delivery.job_id = _enqueue(session, clock, delivery.id)


def _enqueue(session: Session, clock: Clock, delivery_id: str) -> int:
    return jobs.enqueue(
        session,
        clock,
        DELIVER_JOB,
        {"delivery_id": delivery_id},
        dedupe_key=f"{DELIVER_JOB}:{delivery_id}",
        max_attempts=policy.MAX_ATTEMPTS,
    )


# ---- the delivery job's bookkeeping ------------------------------------------------------------


def _signing_secrets(
    endpoint: WebhookEndpoint, now: datetime, box: SecretBox
) -> tuple[str, list[str]]:
    """The secrets to sign with now (raises SecretUnreadable when they cannot be read)."""
    expires = endpoint.previous_secret_expires_at
    if endpoint.previous_secret and expires is not None and expires > now:
        return box.open(endpoint.secret), [box.open(endpoint.previous_secret)]
    return box.open(endpoint.secret), []


def _request(
    event: WebhookEvent, endpoint: WebhookEndpoint, now: datetime, box: SecretBox
) -> Request:
    body = event.body.encode("utf-8")
    secret, previous = _signing_secrets(endpoint, now, box)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "Reelout-Event-Id": event.id,
        "Reelout-Event-Type": event.type,
        "Reelout-Signature": signing.sign(secret, int(now.timestamp()), body, previous),
    }
    return Request(endpoint.url, body, headers)


def _locked_delivery(session: Session, delivery_id: str) -> WebhookDelivery | None:
    return session.get(WebhookDelivery, delivery_id, with_for_update=True)


def _give_up(delivery: WebhookDelivery, reason: str) -> None:
    delivery.state = FAILED
    delivery.failure_reason = reason


def start_attempt(
    session: Session, clock: Clock, delivery_id: str, box: SecretBox
) -> Request | None:
    """What to send now (the stored body, signed at this moment), or None: nothing to do.

    A secret that cannot be read (the server secret changed) fails the delivery here, with a
    logged attempt saying to rotate it: no retry can succeed before that."""
    delivery = _locked_delivery(session, delivery_id)
    if delivery is None or delivery.state != PENDING:
        return None
    endpoint = session.get(WebhookEndpoint, delivery.endpoint_id)
    if endpoint is None or endpoint.deleted_at is not None:
        _give_up(delivery, "the endpoint was deleted")
        return None
    event = session.get(WebhookEvent, delivery.event_id)
    assert event is not None  # a delivery's event is only pruned together with it
    try:
        return _request(event, endpoint, clock.now(), box)
    except SecretUnreadable as exc:
        failed = AttemptResult(clock.now(), 0, None, str(exc), exc.code, permanent=True)
        _record(session, delivery, endpoint.url, failed)
        _give_up(delivery, f"{exc.code}: {exc}")
        return None


def _record(session: Session, delivery: WebhookDelivery, url: str, result: AttemptResult) -> None:
    delivery.attempts += 1
    delivery.url = url
    delivery.last_status = result.status_code
    delivery.last_error = result.error
    delivery.last_error_code = result.error_code
    delivery.last_duration_ms = result.duration_ms
    delivery.last_attempt_at = result.started_at
    session.add(
        WebhookAttempt(
            delivery_id=delivery.id,
            number=delivery.attempts,
            started_at=result.started_at,
            duration_ms=result.duration_ms,
            status_code=result.status_code,
            error=result.error,
            error_code=result.error_code,
            response_content_type=result.answer.content_type,
            response_bytes=result.answer.length,
            response_excerpt=result.answer.excerpt,
        )
    )


def finish_attempt(
    session: Session,
    clock: Clock,
    delivery_id: str,
    url: str,
    result: AttemptResult,
    *,
    retry_window_seconds: float,
) -> DeliveryState:
    """Log the attempt and decide: delivered, pending (try again later) or failed.

    Every delivery is attempted at least once; after a failed attempt it is tried again only
    while less than the retry window has passed since its event was emitted. A permanent failure
    (an address that is not allowed) fails it at once: retrying would knock on the same door
    every backoff for a day. DNS can change, so such a delivery can be resent by hand."""
    delivery = _locked_delivery(session, delivery_id)
    if delivery is None:
        return DeliveryState.failed
    _record(session, delivery, url, result)
    now = clock.now()
    if result.ok:
        delivery.state, delivery.delivered_at, delivery.failure_reason = DELIVERED, now, None
    elif result.permanent and delivery.state == PENDING:
        _give_up(
            delivery,
            f"{result.error_code}: {result.error} (not retried; resend it once "
            "the address or REELOUT_WEBHOOK_ALLOW_NETWORKS is fixed)",
        )
    elif delivery.state == PENDING:
        event = session.get(WebhookEvent, delivery.event_id)
        assert event is not None
        if policy.window_closed(event.created_at, now, retry_window_seconds):
            hours = f"{retry_window_seconds / 3600:g}"
            _give_up(
                delivery,
                f"no successful attempt within {hours} h of the event "
                f"({delivery.attempts} attempts; the last: {result.error})",
            )
    return DeliveryState(delivery.state)


def abandon(session: Session, delivery_id: str, reason: str) -> None:
    """Mark a still-pending delivery failed (its job will never run again)."""
    delivery = _locked_delivery(session, delivery_id)
    if delivery is not None and delivery.state == PENDING:
        _give_up(delivery, reason)


# ---- the delivery log --------------------------------------------------------------------------


def _next_cursor(delivery: WebhookDelivery) -> str:
    return encode_cursor(delivery.created_at, delivery.id)


def _next_attempt_at(session: Session, delivery: WebhookDelivery) -> datetime | None:
    if delivery.state != PENDING or delivery.job_id is None:
        return None
    job = jobs.get_job(session, delivery.job_id)
    return job.run_at if job is not None and job.state == jobs.QUEUED else None


def _delivery_out(session: Session, delivery: WebhookDelivery, event_type: str) -> DeliveryOut:
    return DeliveryOut(
        id=delivery.id,
        event_id=delivery.event_id,
        event_type=event_type,
        endpoint_id=delivery.endpoint_id,
        url=delivery.url,
        state=DeliveryState(delivery.state),
        attempts=delivery.attempts,
        last_status=delivery.last_status,
        last_error=delivery.last_error,
        last_error_code=delivery.last_error_code,
        last_duration_ms=delivery.last_duration_ms,
        last_attempt_at=delivery.last_attempt_at,
        failure_reason=delivery.failure_reason,
        created=delivery.created_at,
        delivered_at=delivery.delivered_at,
        next_attempt_at=_next_attempt_at(session, delivery),
    )


@dataclass(frozen=True)
class DeliveryFilter:
    """What `list_deliveries` narrows to; None means any."""

    event_type: str | None = None
    endpoint_id: str | None = None
    state: DeliveryState | None = None
    event_id: str | None = None
    video_uid: str | None = None


def list_deliveries(
    session: Session,
    where: DeliveryFilter = DeliveryFilter(),
    *,
    limit: int = 50,
    cursor: str | None = None,
) -> DeliveryPage:
    """Newest first, keyset-paginated so pages stay stable while deliveries arrive."""
    if where.event_type is not None and where.event_type not in (*policy.EVENT_TYPES, TEST_EVENT):
        raise BadRequest(
            f"unknown event type {where.event_type!r}; known: {', '.join(policy.EVENT_TYPES)}",
            code="UNKNOWN_EVENT",
            details={"unknown": [where.event_type], "known": list(policy.EVENT_TYPES)},
        )
    query = (
        select(WebhookDelivery, WebhookEvent.type)
        .join(WebhookEvent, WebhookEvent.id == WebhookDelivery.event_id)
        .order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc())
    )
    if where.event_type is not None:
        query = query.where(WebhookEvent.type == where.event_type)
    if where.endpoint_id is not None:
        query = query.where(WebhookDelivery.endpoint_id == where.endpoint_id)
    if where.state is not None:
        query = query.where(WebhookDelivery.state == where.state.value)
    if where.event_id is not None:
        query = query.where(WebhookDelivery.event_id == where.event_id)
    if where.video_uid is not None:
        query = query.where(WebhookEvent.video_uid == where.video_uid)
    if cursor:
        created, delivery_id = decode_cursor(cursor)
        query = query.where(
            (WebhookDelivery.created_at < created)
            | ((WebhookDelivery.created_at == created) & (WebhookDelivery.id < delivery_id))
        )
    rows = list(session.execute(query.limit(limit + 1)).all())
    more, rows = len(rows) > limit, rows[:limit]
    return DeliveryPage(
        deliveries=[_delivery_out(session, delivery, kind) for delivery, kind in rows],
        next_cursor=_next_cursor(rows[-1][0]) if more and rows else None,
    )


def _delivery(session: Session, delivery_id: str) -> WebhookDelivery:
    delivery = session.get(WebhookDelivery, delivery_id)
    if delivery is None:
        raise NotFound(f"no webhook delivery with id {delivery_id!r}", code="DELIVERY_NOT_FOUND")
    return delivery


def get_delivery(session: Session, delivery_id: str) -> DeliveryDetail:
    """One delivery with its body and every attempt, oldest first."""
    delivery = _delivery(session, delivery_id)
    event = session.get(WebhookEvent, delivery.event_id)
    assert event is not None
    attempts = session.scalars(
        select(WebhookAttempt)
        .where(WebhookAttempt.delivery_id == delivery_id)
        .order_by(WebhookAttempt.number, WebhookAttempt.id)
    )
    return DeliveryDetail(
        **_delivery_out(session, delivery, event.type).model_dump(),
        body=event.body,
        attempt_log=[AttemptOut.model_validate(a, from_attributes=True) for a in attempts],
    )


def resend(
    session: Session, clock: Clock, who: Actor, delivery_id: str, reason: str | None = None
) -> DeliveryOut:
    """Send a finished delivery again: same event id and body, one more attempt right away."""
    delivery = _delivery(session, delivery_id)
    if delivery.state == PENDING:
        raise Conflict(
            "the delivery is still being attempted; wait for it to finish",
            code="DELIVERY_PENDING",
        )
    endpoint = session.get(WebhookEndpoint, delivery.endpoint_id)
    if endpoint is None or endpoint.deleted_at is not None:
        raise Conflict("the delivery's endpoint was deleted", code="WEBHOOK_DELETED")
    patch = audit.patch_of({"state": delivery.state}, {"state": PENDING})
    delivery.state, delivery.failure_reason = PENDING, None
    delivery.job_id = _enqueue(session, clock, delivery.id)
    event = session.get(WebhookEvent, delivery.event_id)
    assert event is not None
    target = Target("delivery", delivery.id)
    audit.record(session, clock, who, "webhook.resent", target, reason=reason, patch=patch)
    return _delivery_out(session, delivery, event.type)


def send_test(session: Session, clock: Clock, who: Actor, endpoint_id: str) -> DeliveryOut:
    """Queue a `webhook.test` event to this endpoint only (whatever it subscribes to): a
    delivery like any other, signed, retried and logged."""
    endpoint = _endpoint(session, endpoint_id, lock=False)
    now = clock.now()
    event = WebhookEvent(id=_new_id("evt_"), type=TEST_EVENT, created_at=now)
    data = {"endpoint_id": endpoint.id, "message": "a test delivery from Reelout"}
    event.body = event_body(event.id, TEST_EVENT, now, data)
    session.add(event)
    session.flush()
    _queue_delivery(session, clock, event, endpoint)
    delivery = session.scalars(
        select(WebhookDelivery).where(WebhookDelivery.event_id == event.id)
    ).one()
    audit.record(session, clock, who, "webhook.tested", Target("webhook", endpoint.id))
    return _delivery_out(session, delivery, TEST_EVENT)


# ---- retention ---------------------------------------------------------------------------------


def prune(session: Session, clock: Clock, older_than_seconds: float) -> int:
    """Delete finished deliveries (with their attempts) and events older than the retention."""
    cutoff = clock.now() - timedelta(seconds=older_than_seconds)
    finished = (WebhookDelivery.created_at < cutoff, WebhookDelivery.state != PENDING)
    old = select(WebhookDelivery.id).where(*finished)
    session.execute(delete(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(old)))
    removed = session.execute(delete(WebhookDelivery).where(*finished))
    still_used = select(WebhookDelivery.event_id)
    session.execute(
        delete(WebhookEvent).where(
            WebhookEvent.created_at < cutoff, WebhookEvent.id.not_in(still_used)
        )
    )
    return int(getattr(removed, "rowcount", 0) or 0)
