"""Background jobs of the media domain: processing a video (`media.process`)."""

from __future__ import annotations

import dataclasses
import functools
import logging
from typing import TypeVar

from reelout.jobs.registry import JobCancelled, JobContext, Registry
from reelout.jobs.service import DeadJob
from reelout.media import service as media
from reelout.media.context import MediaContext
from reelout.media.errors import OutOfSpace
from reelout.media.ffmpeg import FfmpegCancelled, Tools, find_tools
from reelout.media.pipeline import Job, child_ledger
from reelout.media.sandbox import confinement_problem, landlock_abi
from reelout.media.service import PROCESS_ATTEMPTS, PROCESS_JOB, PURGE_JOB
from reelout.urls import configured_base_url

log = logging.getLogger(__name__)


@functools.cache
def tools(ffmpeg: str | None, ffprobe: str | None) -> Tools:
    """The encoder binaries, found once per process (and logged, so an operator sees which)."""
    found = find_tools(ffmpeg, ffprobe)
    binaries = [found.ffmpeg] + ([found.ffprobe] if found.ffprobe else [])
    found = dataclasses.replace(found, confinement_problem=confinement_problem(binaries))
    if found.confinement_problem:
        log.error(
            "media: ffmpeg cannot run inside the sandbox (%s); processing fails until it can: "
            "install ffmpeg under /usr, or set REELOUT_MEDIA_SANDBOX=false",
            found.confinement_problem,
        )
    abi = landlock_abi()
    log.info(
        "media: ffmpeg %s from %s (%s); probing with %s; %s",
        found.version,
        found.origin,
        found.ffmpeg,
        found.ffprobe or "PyAV",
        f"Landlock ABI {abi} available to confine it" if abi else "no Landlock: runs unconfined",
    )
    return found


def process_video(ctx: JobContext[MediaContext]) -> None:
    """Turn the video's original into a published HLS ladder, MP4 fallback and poster."""
    rt, uid = ctx.runtime, str(ctx.payload["uid"])
    found = tools(rt.settings.ffmpeg, rt.settings.ffprobe)
    job = Job(rt, found, uid, ctx.cancelled, attempt=ctx.attempt)
    try:
        job.run(job_key=f"{ctx.job_id}-{ctx.attempt}")
    except FfmpegCancelled as exc:
        raise JobCancelled(str(exc)) from exc


def purge_version(ctx: JobContext[MediaContext]) -> None:
    """Remove a version a re-encode replaced, once its grace period is over."""
    rt = ctx.runtime
    uid, version = str(ctx.payload["uid"]), str(ctx.payload["version"])
    with rt.db.read() as session:
        if media.retire_version(session, rt.media_store, uid, version):
            log.info("video %s: replaced version %s removed", uid, version)


def processing_gave_up(rt: MediaContext, job: DeadJob) -> None:
    """The last attempt failed unexpectedly (or its worker died): say so on the video."""
    first_line = job.error.strip().splitlines()[0] if job.error.strip() else "no detail"
    code, text = "ERR_UNKNOWN", f"processing failed {PROCESS_ATTEMPTS} times; the last error: "
    if first_line.startswith(f"{OutOfSpace.__name__}: "):  # worker.describe_error's first line
        code = "ERR_NO_SPACE"
        text = f"the server's disk was full on each of {PROCESS_ATTEMPTS} attempts; free space, "
        text += "then reprocess the video. The last error: "
    with rt.db.session() as session:
        media.mark_failed(
            session,
            rt.clock,
            str(job.payload["uid"]),
            code,
            text + first_line,
            base_url=configured_base_url(rt.settings),
            attempt=job.attempts,
        )


def end_leftover_encodes(rt: MediaContext) -> None:
    """At worker start: kill the ffmpeg process groups that dead workers on this host left."""
    killed = child_ledger(rt.settings).sweep()
    if killed:
        log.warning("media: ended %s ffmpeg run(s) left by a dead worker", killed)


Host = TypeVar("Host", bound=MediaContext)


def register(registry: Registry[Host]) -> None:
    registry.handler(PROCESS_JOB)(process_video)
    registry.limit(PROCESS_JOB, lambda settings: settings.media_concurrency)
    registry.handler(PURGE_JOB)(purge_version)
    registry.on_dead(PROCESS_JOB)(processing_gave_up)
    registry.on_start(end_leftover_encodes)
