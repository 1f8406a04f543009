"""Background jobs of the media domain (processing arrives with the media pipeline issue)."""

from __future__ import annotations

import logging

from reelout.jobs.registry import JobContext, Registry
from reelout.media import service as media
from reelout.media.service import PROCESS_JOB

log = logging.getLogger(__name__)


def process_video(ctx: JobContext) -> None:
    """Secure the original on disk; the HLS pipeline (next issue) continues from here."""
    rt, uid = ctx.runtime, str(ctx.payload["uid"])
    with rt.db.session() as session:
        if not media.secure_original(session, rt.clock, rt.media_store, uid):
            log.warning("video %s: the stored original does not match the upload", uid)
            return
    log.info("media.process for %s: original secured; pipeline not installed yet", uid)


def register(registry: Registry) -> None:
    registry.handler(PROCESS_JOB)(process_video)
