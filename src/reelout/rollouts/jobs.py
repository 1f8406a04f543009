"""Background jobs of the rollouts domain: the controller's periodic tick (`controller.tick`), and
telling the plan's `notify` targets that a rollout paused, rolled back, completed or was aborted
(`effects.send_notices`)."""

from __future__ import annotations

from datetime import datetime
from typing import TypeVar

from reelout.context import Core
from reelout.jobs.registry import JobContext, Registry
from reelout.rollouts import controller, effects


def tick(ctx: JobContext[Core]) -> None:
    """The schedule's slot is the tick's: a slot's job run twice decides nothing twice."""
    slot = ctx.payload.get("slot")
    at = datetime.fromisoformat(slot) if isinstance(slot, str) else None
    controller.tick(ctx.runtime.db, ctx.runtime.clock, slot=at)


def notify(ctx: JobContext[Core]) -> None:
    rt = ctx.runtime
    with rt.db.session() as session:
        effects.send_notices(
            session, rt.clock, ctx.payload, max_attempts=rt.settings.alerts_delivery_attempts
        )


Host = TypeVar("Host", bound=Core)


def register(registry: Registry[Host]) -> None:
    registry.handler(effects.NOTIFY_JOB)(notify)
    registry.handler(controller.TICK_JOB)(tick)
    registry.periodic("rollouts-tick", controller.TICK_JOB, lambda s: s.rollout_tick_seconds)
