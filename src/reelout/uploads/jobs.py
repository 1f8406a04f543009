"""Background jobs of the uploads domain: the periodic reaper of expired and abandoned uploads."""

from __future__ import annotations

import logging

from reelout.jobs.registry import JobContext, Registry
from reelout.runtime import Runtime
from reelout.uploads.abandoned import reap_abandoned
from reelout.uploads.service import TusService

log = logging.getLogger(__name__)
REAP_JOB = "uploads.reap"


def reap_expired(ctx: JobContext[Runtime]) -> None:
    removed = TusService(ctx.runtime).reap_expired()
    if removed:
        log.info("reaped %d expired uploads", removed)
    ended = reap_abandoned(ctx.runtime)
    if ended:
        log.info("ended %d abandoned uploads", ended)


def register(registry: Registry[Runtime]) -> None:
    registry.handler(REAP_JOB)(reap_expired)
    registry.periodic("uploads-reaper", REAP_JOB, lambda s: s.reaper_interval_seconds)
