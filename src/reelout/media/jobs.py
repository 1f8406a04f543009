"""Background jobs of the media domain (processing arrives with the media pipeline issue)."""

from __future__ import annotations

import logging

from reelout.jobs.registry import JobContext, Registry
from reelout.media.service import PROCESS_JOB

log = logging.getLogger(__name__)


def process_video(ctx: JobContext) -> None:
    """Placeholder until the HLS pipeline lands: the video stays `queued`."""
    log.info("media.process for %s: pipeline not installed yet", ctx.payload.get("uid"))


def register(registry: Registry) -> None:
    registry.handler(PROCESS_JOB)(process_video)
