"""Background jobs of telemetry: server facts and the minute rollups, and the retention purge."""

from __future__ import annotations

import logging
from typing import TypeVar

from reelout.context import Core
from reelout.jobs.registry import JobContext, Registry
from reelout.telemetry import rollups, server_facts, service

log = logging.getLogger(__name__)
ROLLUP_JOB = "telemetry.rollup"
PURGE_JOB = "telemetry.purge"
PURGE_EVERY_SECONDS = 3600


def roll_up(ctx: JobContext[Core]) -> None:
    recorded = server_facts.collect(ctx.runtime)
    if recorded:
        log.debug("recorded %d server facts as telemetry", recorded)
    folded = rollups.roll_up(ctx.runtime)
    if folded:
        log.debug("rolled up %d telemetry events", folded)


def purge(ctx: JobContext[Core]) -> None:
    deleted = service.purge(ctx.runtime) + rollups.purge(ctx.runtime)
    if deleted:
        log.info("deleted %d telemetry rows past their retention", deleted)


Host = TypeVar("Host", bound=Core)


def register(registry: Registry[Host]) -> None:
    registry.handler(ROLLUP_JOB)(roll_up)
    registry.handler(PURGE_JOB)(purge)
    registry.periodic("telemetry-rollup", ROLLUP_JOB, lambda s: s.telemetry_rollup_seconds)
    registry.periodic("telemetry-purge", PURGE_JOB, lambda _: PURGE_EVERY_SECONDS)
