"""Notification deliveries: queued as rows plus `alerts.deliver` jobs in the caller's
transaction, sent by the webhooks' sender (pinned addresses, no redirects, a timeout), signed
like the media webhooks for JSON receivers, and logged attempt by attempt."""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from typing import Any

from sqlalchemy import delete
from sqlalchemy.orm import Session

from reelout import __version__
from reelout.alerts import counters, payloads
from reelout.alerts.models import AlertDelivery, AlertReceiver
from reelout.alerts.schemas import DeliveryState, ReceiverKind
from reelout.clock import Clock
from reelout.jobs import service as jobs
from reelout.webhooks import signing
from reelout.webhooks.secretbox import SecretBox, SecretUnreadable
from reelout.webhooks.sender import AttemptResult, Request

DELIVER_JOB = "alerts.deliver"
USER_AGENT = f"Reelout-Alerts/{__version__}"
PENDING, DELIVERED, FAILED = (s.value for s in DeliveryState)


def queue(
    session: Session,
    clock: Clock,
    receiver: AlertReceiver,
    event: str,
    status: str,
    *,
    data: Mapping[str, Any],
    slack: Mapping[str, Any],
    max_attempts: int,
    rule_id: str | None = None,
    group_key: str | None = None,
) -> str:
    """Record one message to `receiver` (its body fixed now) and queue the job that sends it."""
    delivery_id = "ad_" + secrets.token_hex(12)
    now = clock.now()
    if receiver.kind == ReceiverKind.slack.value:
        body = json.dumps(dict(slack), ensure_ascii=False, separators=(",", ":"))
    else:
        body = payloads.envelope(delivery_id, event, now, data)
    row = AlertDelivery(
        id=delivery_id,
        receiver_id=receiver.id,
        event=event,
        status=status,
        rule_id=rule_id,
        group_key=group_key,
        body=body,
        url=receiver.url,
        state=PENDING,
        attempts=0,
        created_at=now,
    )
    session.add(row)
    counters.bump(session, counters.NOTIFICATIONS, (receiver.id, event, status))
    session.flush()
    row.job_id = jobs.enqueue(
        session,
        clock,
        DELIVER_JOB,
        {"delivery_id": delivery_id},
        dedupe_key=f"{DELIVER_JOB}:{delivery_id}",
        max_attempts=max_attempts,
    )
    return delivery_id


def _fail(row: AlertDelivery, why: str, code: str) -> None:
    row.state, row.last_error, row.last_error_code = FAILED, why, code


def start_attempt(
    session: Session, clock: Clock, delivery_id: str, box: SecretBox
) -> Request | None:
    """What to send now (signed at this moment for a webhook receiver), or None: nothing to do."""
    row = session.get(AlertDelivery, delivery_id, with_for_update=True)
    if row is None or row.state != PENDING:
        return None
    receiver = session.get(AlertReceiver, row.receiver_id)
    if receiver is None:
        _fail(row, "the receiver was deleted", "RECEIVER_NOT_FOUND")
        return None
    body = row.body.encode("utf-8")
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
    if receiver.secret is not None:
        try:
            secret = box.open(receiver.secret)
        except SecretUnreadable as exc:
            _fail(row, str(exc), exc.code)
            return None
        headers |= {
            "Reelout-Event-Id": row.id,
            "Reelout-Event-Type": row.event,
            "Reelout-Signature": signing.sign(secret, int(clock.now().timestamp()), body),
        }
    return Request(receiver.url, body, headers)


def finish_attempt(
    session: Session, clock: Clock, delivery_id: str, result: AttemptResult
) -> DeliveryState:
    """Log the attempt: delivered, failed for good (an address not allowed), or pending."""
    row = session.get(AlertDelivery, delivery_id, with_for_update=True)
    if row is None:
        return DeliveryState.failed
    row.attempts += 1
    row.last_status, row.last_error = result.status_code, result.error
    row.last_error_code, row.last_attempt_at = result.error_code, result.started_at
    if result.ok:
        row.state, row.delivered_at = DELIVERED, clock.now()
    elif result.permanent and row.state == PENDING:
        row.state = FAILED
    return DeliveryState(row.state)


def abandon(session: Session, delivery_id: str, reason: str) -> None:
    """A still-pending delivery whose job will never run again is failed."""
    row = session.get(AlertDelivery, delivery_id, with_for_update=True)
    if row is not None and row.state == PENDING:
        row.state, row.last_error = FAILED, reason


def prune(session: Session, older_than: Any) -> int:
    stmt = delete(AlertDelivery).where(
        AlertDelivery.state != PENDING, AlertDelivery.created_at < older_than
    )
    return int(getattr(session.execute(stmt), "rowcount", 0) or 0)
