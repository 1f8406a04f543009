"""Housekeeping of the jobs domain itself: pruning finished jobs on a schedule."""

from __future__ import annotations

import logging
from typing import Any

from reelout.context import Core
from reelout.jobs import service
from reelout.jobs.registry import JobContext, Registry

log = logging.getLogger(__name__)
PRUNE_JOB = "jobs.prune"


def prune(ctx: JobContext[Core]) -> None:
    rt = ctx.runtime
    removed = service.prune_finished(rt.db, rt.clock, rt.settings.job_retention_days * 86400)
    if removed:
        log.info("pruned %d finished jobs", removed)


def register(registry: Registry[Any]) -> None:
    registry.handler(PRUNE_JOB)(prune)
    registry.periodic("jobs-pruner", PRUNE_JOB, lambda _settings: 3600)
