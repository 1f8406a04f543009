"""Background jobs of the rollouts domain: telling the plan's `notify` targets that a rollout
paused, rolled back, completed or was aborted (`effects.send_notices`)."""

from __future__ import annotations

from typing import TypeVar

from reelout.context import Core
from reelout.jobs.registry import JobContext, Registry
from reelout.rollouts import effects


def notify(ctx: JobContext[Core]) -> None:
    rt = ctx.runtime
    with rt.db.session() as session:
        effects.send_notices(
            session, rt.clock, ctx.payload, max_attempts=rt.settings.alerts_delivery_attempts
        )


Host = TypeVar("Host", bound=Core)


def register(registry: Registry[Host]) -> None:
    registry.handler(effects.NOTIFY_JOB)(notify)
