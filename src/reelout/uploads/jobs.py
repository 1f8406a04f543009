"""Background jobs of the uploads domain: the periodic reaper of expired and abandoned uploads."""

from __future__ import annotations

import logging
from typing import TypeVar

from reelout.jobs.registry import JobContext, Registry
from reelout.uploads.abandoned import reap_abandoned
from reelout.uploads.context import UploadsContext
from reelout.uploads.service import TusService

log = logging.getLogger(__name__)
REAP_JOB = "uploads.reap"


def reap_expired(ctx: JobContext[UploadsContext]) -> None:
    removed = TusService(ctx.runtime).reap_expired()
    if removed:
        log.info("reaped %d expired uploads", removed)
    ended = reap_abandoned(ctx.runtime)
    if ended:
        log.info("ended %d abandoned uploads", ended)


Host = TypeVar("Host", bound=UploadsContext)


def register(registry: Registry[Host]) -> None:
    registry.handler(REAP_JOB)(reap_expired)
    registry.periodic("uploads-reaper", REAP_JOB, lambda s: s.reaper_interval_seconds)
