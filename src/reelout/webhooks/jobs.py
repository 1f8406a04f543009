"""Background jobs of the webhooks domain: one delivery attempt (`webhooks.deliver`) and pruning."""

from __future__ import annotations

import logging
from typing import TypeVar

from reelout.context import Signing
from reelout.errors import ReeloutError
from reelout.jobs.registry import JobContext, Registry
from reelout.jobs.service import DeadJob
from reelout.webhooks import sender, service
from reelout.webhooks.schemas import DeliveryState
from reelout.webhooks.secretbox import box_for

log = logging.getLogger(__name__)
PRUNE_JOB = "webhooks.prune"
SEAL_JOB = "webhooks.seal_secrets"


class DeliveryAttemptFailed(ReeloutError):
    """An attempt failed and the retry window is still open: the jobs table tries again later."""

    status = 502
    code = "WEBHOOK_ATTEMPT_FAILED"


def deliver(ctx: JobContext[Signing]) -> None:
    """POST the delivery's stored body once; raise (to be retried with backoff) if it failed."""
    rt, delivery_id = ctx.runtime, str(ctx.payload["delivery_id"])
    with rt.db.session() as session:
        request = service.start_attempt(session, rt.clock, delivery_id, box_for(rt.secret))
    if request is None:
        return
    settings = rt.settings
    result = sender.post_as_configured(
        request, settings, rt.clock, settings.webhook_response_excerpt_bytes
    )
    with rt.db.session() as session:
        state = service.finish_attempt(
            session,
            rt.clock,
            delivery_id,
            request.url,
            result,
            retry_window_seconds=rt.settings.webhook_retry_hours * 3600,
        )
    if state is DeliveryState.pending:
        raise DeliveryAttemptFailed(
            f"webhook delivery {delivery_id} to {request.url} failed: {result.error}"
        )
    if state is DeliveryState.failed:
        log.warning(
            "webhook delivery %s to %s given up: %s", delivery_id, request.url, result.error
        )


def delivery_gave_up(rt: Signing, job: DeadJob) -> None:
    """The job ran out of attempts (or its worker died on the last one): the delivery failed."""
    first_line = job.error.strip().splitlines()[0] if job.error.strip() else "no detail"
    with rt.db.session() as session:
        service.abandon(
            session, str(job.payload["delivery_id"]), f"delivery job gave up: {first_line}"
        )


def prune(ctx: JobContext[Signing]) -> None:
    rt = ctx.runtime
    with rt.db.session() as session:
        removed = service.prune(session, rt.clock, rt.settings.webhook_retention_days * 86400)
    if removed:
        log.info("pruned %d old webhook deliveries", removed)


def seal_secrets(ctx: JobContext[Signing]) -> None:
    """Encrypt signing secrets stored in clear before encryption existed (a migration cannot:
    it has no server secret); hourly, so an upgraded server seals them on its first tick."""
    rt = ctx.runtime
    with rt.db.session() as session:
        sealed = service.seal_clear_secrets(session, box_for(rt.secret))
    if sealed:
        log.info("encrypted %d webhook signing secrets stored in clear", sealed)


Host = TypeVar("Host", bound=Signing)


def register(registry: Registry[Host]) -> None:
    registry.handler(service.DELIVER_JOB)(deliver)
    registry.on_dead(service.DELIVER_JOB)(delivery_gave_up)
    registry.handler(PRUNE_JOB)(prune)
    registry.periodic("webhooks-pruner", PRUNE_JOB, lambda _settings: 3600)
    registry.handler(SEAL_JOB)(seal_secrets)
    registry.periodic("webhooks-secret-sealer", SEAL_JOB, lambda _settings: 3600)
