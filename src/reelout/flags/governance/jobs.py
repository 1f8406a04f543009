"""Job handlers of scheduled flag changes: applying one when it comes due."""

from __future__ import annotations

import logging
from typing import TypeVar

from reelout.context import Core
from reelout.flags.governance import schedules
from reelout.jobs.registry import JobContext, Registry
from reelout.jobs.service import DeadJob

log = logging.getLogger("reelout.flags")


def apply_schedule(ctx: JobContext[Core]) -> None:
    """Apply one scheduled change (a no-op if it was canceled or already applied)."""
    rt, schedule_id = ctx.runtime, int(ctx.payload["schedule_id"])
    status = schedules.apply(rt.db, rt.clock, schedule_id)
    log.info("scheduled flag change #%s: %s", schedule_id, status or "no longer pending")


def gave_up(rt: Core, job: DeadJob) -> None:
    """The job failed for the last time (database trouble, ...): the change is recorded failed."""
    message = (
        f"applying it failed on every attempt: {job.error.splitlines()[0] if job.error else ''}"
    )
    schedules.mark_failed(rt.db, rt.clock, int(job.payload["schedule_id"]), "APPLY_FAILED", message)


Host = TypeVar("Host", bound=Core)


def register(registry: Registry[Host]) -> None:
    registry.handler(schedules.APPLY_JOB)(apply_schedule)
    registry.on_dead(schedules.APPLY_JOB)(gave_up)
