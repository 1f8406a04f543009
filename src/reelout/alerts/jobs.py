"""Background jobs of the alerts domain: the periodic evaluation tick, one delivery attempt, and
pruning of old history and deliveries."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TypeVar

from sqlalchemy import delete

from reelout.alerts import delivery, evaluation
from reelout.alerts.host import AlertsHost
from reelout.alerts.models import AlertTransition
from reelout.alerts.schemas import DeliveryState
from reelout.errors import ReeloutError
from reelout.jobs.registry import JobContext, Registry
from reelout.jobs.service import DeadJob
from reelout.webhooks import sender
from reelout.webhooks.secretbox import box_for

log = logging.getLogger("reelout.alerts")
PRUNE_JOB = "alerts.prune"


class AlertDeliveryFailed(ReeloutError):
    """An attempt failed and attempts are left: the jobs table tries again after a backoff."""

    status = 502
    code = "ALERT_DELIVERY_ATTEMPT_FAILED"


def evaluate(ctx: JobContext[AlertsHost]) -> None:
    rt = ctx.runtime
    result = evaluation.tick(rt.db, rt.clock, rt.alert_signals, rt.settings)
    if result.transitions or result.notifications or result.digests:
        log.info(
            "alerts at %s: %d transitions, %d notifications, %d digests",
            result.at.isoformat(),
            result.transitions,
            result.notifications,
            result.digests,
        )


def deliver(ctx: JobContext[AlertsHost]) -> None:
    """Send one queued message once; raise (retried with backoff) if it failed."""
    rt, delivery_id = ctx.runtime, str(ctx.payload["delivery_id"])
    with rt.db.session() as session:
        request = delivery.start_attempt(session, rt.clock, delivery_id, box_for(rt.secret))
    if request is None:
        return
    result = sender.post_as_configured(request, rt.settings, rt.clock)
    with rt.db.session() as session:
        state = delivery.finish_attempt(session, rt.clock, delivery_id, result)
    if state is DeliveryState.pending:
        raise AlertDeliveryFailed(f"alert delivery {delivery_id} to {request.url}: {result.error}")


def gave_up(rt: AlertsHost, job: DeadJob) -> None:
    first_line = job.error.strip().splitlines()[0] if job.error.strip() else "no detail"
    with rt.db.session() as session:
        delivery.abandon(session, str(job.payload["delivery_id"]), f"gave up: {first_line}")


def prune(ctx: JobContext[AlertsHost]) -> None:
    rt = ctx.runtime
    cutoff = rt.clock.now() - timedelta(days=rt.settings.alerts_history_days)
    with rt.db.session() as session:
        removed = delivery.prune(session, cutoff)
        session.execute(delete(AlertTransition).where(AlertTransition.at < cutoff))
    if removed:
        log.info("pruned %d old alert deliveries", removed)


Host = TypeVar("Host", bound=AlertsHost)


def register(registry: Registry[Host]) -> None:
    registry.handler(evaluation.EVAL_JOB)(evaluate)
    registry.periodic("alerts-evaluator", evaluation.EVAL_JOB, lambda s: s.alerts_eval_seconds)
    registry.handler(delivery.DELIVER_JOB)(deliver)
    registry.on_dead(delivery.DELIVER_JOB)(gave_up)
    registry.handler(PRUNE_JOB)(prune)
    registry.periodic("alerts-pruner", PRUNE_JOB, lambda _settings: 3600)
