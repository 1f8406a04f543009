"""The processing of one video, step by step: secure the original, probe, plan, encode once,
measure, write the master, MP4 fallback, poster, publish, ready.

Each step's failure becomes a video error code (ERR_NON_VIDEO, ERR_MALFORMED, ERR_DURATION_LIMIT,
ERR_RESOLUTION_LIMIT, ERR_DECODE, ERR_TIMEOUT); a full disk (ffmpeg's or ours) raises
`OutOfSpace` and anything unexpected propagates, so the job is retried with backoff. Each
attempt works in a fresh scratch folder, removed when it ends; ffmpeg and ffprobe run confined
to the source and that folder (sandbox.py). Database writes are short units of work; file work
runs outside them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reelout.config import Settings
from reelout.media import encode, ffmpeg, playlists
from reelout.media import service as media
from reelout.media.containers import InputPolicy
from reelout.media.context import MediaContext
from reelout.media.errors import OutOfSpace, VideoFailed, is_out_of_space
from reelout.media.ffmpeg import RunLimits, Tools
from reelout.media.ladder import Limits, Plan, Rung, plan_ladder
from reelout.media.probe import SourceInfo, probe
from reelout.media.sandbox import Ledger, Sandbox
from reelout.media.storage import LocalOriginals
from reelout.urls import configured_base_url

log = logging.getLogger(__name__)

ENCODE_SHARE = 90.0  # % of progress the encode covers; the rest is measuring and publishing
PROGRESS_EVERY = 1.0  # seconds between progress writes
MP4_NAME, POSTER_NAME = "video.mp4", "poster.jpg"
SOURCE_COPY = ".original"  # in the scratch folder, when the original is not a local file


@contextlib.contextmanager
def out_of_space_raised() -> Iterator[None]:
    """Our own writes that fail for want of space (ENOSPC, EFBIG, EDQUOT) raise OutOfSpace."""
    try:
        yield
    except OSError as exc:
        if is_out_of_space(exc):
            raise OutOfSpace(f"the disk is full: {exc}") from exc
        raise


def child_ledger(settings: Settings) -> Ledger:
    """Where this host's running ffmpeg children are recorded (see sandbox.Ledger)."""
    return Ledger(settings.data_dir / "run" / "ffmpeg")


def input_policy(settings: Settings) -> InputPolicy:
    return InputPolicy(tuple(settings.media_containers))


@dataclass(frozen=True)
class Published:
    version: str
    duration: float
    width: int
    height: int
    renditions: list[dict[str, Any]]


class Job:
    """One run of the pipeline for one video."""

    def __init__(
        self,
        rt: MediaContext,
        tools: Tools,
        uid: str,
        cancelled: threading.Event,
        attempt: int | None = None,
    ) -> None:
        self.rt, self.tools, self.uid, self.cancelled = rt, tools, uid, cancelled
        self.attempt = attempt  # the job's, recorded in the video's state history
        self._last_progress = 0.0

    @property
    def _base_url(self) -> str:
        return configured_base_url(self.rt.settings)

    # -- database steps -------------------------------------------------------------------------
    def _begin(self) -> tuple[int | None, str | None] | None:
        with self.rt.db.session() as session:
            video = media.start_processing(session, self.rt.clock, self.uid, self.attempt)
            return None if video is None else (video.size, video.original_sha256)

    def _progress(self, pct: float, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_progress < PROGRESS_EVERY:
            return
        self._last_progress = now
        with self.rt.db.session() as session:
            media.set_progress(session, self.rt.clock, self.uid, pct)

    def _fail(self, code: str, text: str) -> None:
        log.warning("video %s failed: %s %s", self.uid, code, text.splitlines()[0])
        with self.rt.db.session() as session:
            media.mark_failed(
                session,
                self.rt.clock,
                self.uid,
                code,
                text,
                base_url=self._base_url,
                attempt=self.attempt,
            )

    def _ready(self, done: Published) -> bool:
        with self.rt.db.session() as session:
            return media.mark_ready(
                session,
                self.rt.clock,
                self.uid,
                version=done.version,
                duration=done.duration,
                width=done.width,
                height=done.height,
                renditions=done.renditions,
                purge_grace=self.rt.settings.media_version_grace_seconds,
                base_url=self._base_url,
                attempt=self.attempt,
            )

    # -- the run --------------------------------------------------------------------------------
    def run(self, job_key: str) -> None:
        """Process the video; a no-op when it is gone or not waiting to be processed."""
        begun = self._begin()
        if begun is None:
            return
        try:
            with out_of_space_raised():
                done = self._attempt(job_key, *begun)
        except VideoFailed as exc:
            self._fail(exc.code, exc.text)
            return
        except OutOfSpace as exc:
            self._wait_for_space(str(exc))
            raise
        if not self._ready(done):  # deleted meanwhile
            self.rt.media_store.delete_video(self.uid)

    def _attempt(self, job_key: str, size: int | None, sha256: str | None) -> Published:
        store = self.rt.media_store
        folder = store.scratch(self.uid, job_key)
        try:
            copy = None if isinstance(store, LocalOriginals) else folder / SOURCE_COPY
            fault = media.original_fault(store, self.uid, size, sha256, copy_to=copy)
            if fault is not None:
                raise VideoFailed("ERR_MALFORMED", fault)
            return self._produce(folder, copy)
        finally:
            store.discard(folder)

    def _wait_for_space(self, detail: str) -> None:
        log.warning("video %s waits for disk space: %s", self.uid, detail)
        with self.rt.db.session() as session:
            text = f"waiting for disk space to retry: {detail}"
            media.wait_for_retry(session, self.rt.clock, self.uid, text, self.attempt)

    def _source(self) -> Path:
        store = self.rt.media_store
        if not isinstance(store, LocalOriginals):
            raise RuntimeError("processing needs a media store with local originals")
        return store.original_path(self.uid)

    def _sandbox(self, reads: Path, writes: Path | None) -> Sandbox:
        s = self.rt.settings
        if s.media_sandbox and self.tools.confinement_problem:
            raise RuntimeError(  # retried; an operator must act (see the start-up log)
                f"ffmpeg cannot run inside the sandbox ({self.tools.confinement_problem}); "
                "install ffmpeg under /usr or set REELOUT_MEDIA_SANDBOX=false"
            )
        return Sandbox(
            reads=(reads,),
            writes=(writes,) if writes is not None else (),
            confine=s.media_sandbox,
            max_file_bytes=s.media_ffmpeg_max_file_bytes,
        )

    def _produce(self, folder: Path, copy: Path | None = None) -> Published:
        """`copy`: a local copy of the original inside `folder` (object storage), removed
        before the folder is published."""
        source = copy or self._source()
        policy = input_policy(self.rt.settings)
        src = probe(source, self.tools.ffprobe, policy=policy, sandbox=self._sandbox(source, None))
        plan = plan_ladder(src, self._limits())
        self._encode(plan, src, source, folder, policy)
        renditions = self._write_master(plan, folder)
        self._fallback_and_poster(plan, src, folder)
        self._progress(99.0, force=True)
        if copy is not None:
            copy.unlink()
        version = self.rt.media_store.publish(self.uid, folder)
        width, height = src.video.display_size if src.video else (0, 0)
        return Published(version, src.duration, width, height, renditions)

    def _limits(self) -> Limits:
        s = self.rt.settings
        return Limits(
            max_duration_seconds=s.media_max_duration_seconds, max_pixels=s.media_max_pixels
        )

    def _run_limits(self, duration: float, reads: Path, folder: Path) -> RunLimits:
        s = self.rt.settings
        timeout = max(s.media_timeout_min_seconds, s.media_timeout_factor * duration)
        sandbox = self._sandbox(reads, folder)
        return RunLimits(
            timeout=timeout,
            nice=s.media_ffmpeg_nice,
            cancelled=self.cancelled,
            sandbox=sandbox,
            ledger=child_ledger(s),
            cwd=folder,
        )

    def _encode(
        self, plan: Plan, src: SourceInfo, source: Path, folder: Path, policy: InputPolicy
    ) -> None:
        args = encode.hls_command(self.tools.ffmpeg, plan, src, source, folder, policy=policy)
        duration = max(src.duration, 0.001)

        def on_progress(seconds: float) -> None:
            self._progress(min(seconds / duration, 1.0) * ENCODE_SHARE)

        ffmpeg.run(args, self._run_limits(src.duration, source, folder), on_progress)

    def _write_master(self, plan: Plan, folder: Path) -> list[dict[str, Any]]:
        variants = [_measure(folder, rung, plan) for rung in plan.rungs]
        text = playlists.build_master(variants)
        temp = folder / (encode.HLS_MASTER + ".tmp")
        temp.write_text(text)
        os.replace(temp, folder / encode.HLS_MASTER)
        return [_rendition(rung, v) for rung, v in zip(plan.rungs, variants, strict=True)]

    def _fallback_and_poster(self, plan: Plan, src: SourceInfo, folder: Path) -> None:
        top = folder / plan.top.name
        fragmented = folder / "top.frag.mp4"
        with fragmented.open("wb") as out:
            for part in _rung_files(top):
                out.write(part.read_bytes())
        limits = self._run_limits(src.duration, folder, folder)
        ffmpeg.run(encode.mp4_command(self.tools.ffmpeg, fragmented, folder / MP4_NAME), limits)
        check_written_whole(folder / MP4_NAME)
        fragmented.unlink()
        poster = encode.poster_command(
            self.tools.ffmpeg, folder / MP4_NAME, src.duration, folder / POSTER_NAME
        )
        ffmpeg.run(poster, limits)


def _rung_files(folder: Path) -> list[Path]:
    """The rung's init segment, then its media segments in order."""
    parsed = _media_playlist(folder)
    return [folder / _init_uri(parsed)] + [folder / s.uri for s in parsed.segments]


def _media_playlist(folder: Path) -> playlists.MediaPlaylist:
    return playlists.parse_media_playlist(
        (folder / encode.MEDIA_PLAYLIST).read_text(), _sizes(folder)
    )


def _init_uri(parsed: playlists.MediaPlaylist) -> str:
    if parsed.init_uri is None:
        raise VideoFailed("ERR_DECODE", "the encoder wrote a playlist without an init segment")
    return parsed.init_uri


def _sizes(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_size for p in folder.iterdir() if p.is_file()}


def avc_codec(init: bytes) -> str:
    """RFC 6381 `avc1.PPCCLL` from the avcC box of an init segment: profile, constraint flags
    and level exactly as the encoder wrote them."""
    at = init.find(b"avcC")
    if at < 0 or len(init) < at + 8:
        raise VideoFailed("ERR_DECODE", "the encoder wrote no H.264 configuration")
    return "avc1." + init[at + 5 : at + 8].hex()


def _measure(folder: Path, rung: Rung, plan: Plan) -> playlists.Variant:
    rung_dir = folder / rung.name
    parsed = _media_playlist(rung_dir)
    if not parsed.segments:
        raise VideoFailed("ERR_DECODE", f"the encoder wrote no segments for {rung.name}")
    init = (rung_dir / _init_uri(parsed)).read_bytes()
    for name in [_init_uri(parsed), *(segment.uri for segment in parsed.segments)]:
        check_written_whole(rung_dir / name)
    codecs = avc_codec(init) + (",mp4a.40.2" if plan.audio is not None else "")
    return playlists.Variant(
        uri=f"{rung.name}/{encode.MEDIA_PLAYLIST}",
        width=rung.width,
        height=rung.height,
        frame_rate=float(plan.frame_rate),
        codecs=codecs,
        segments=tuple(parsed.segments),
        init_size=len(init),
    )


BOX_HEADER = 8  # 32-bit size + type; size 1: a 64-bit size follows; size 0: to the end


def box_end(head: bytes, at: int) -> int | None:
    """Where the MP4 box whose 16-byte header `head` starts at `at` ends; None when the header
    is not a box header."""
    size = int.from_bytes(head[:4], "big")
    if size == 1 and len(head) >= BOX_HEADER + 8:
        size = int.from_bytes(head[8:16], "big")
    elif size == 0:
        return -1
    return at + size if size >= BOX_HEADER else None


def check_written_whole(path: Path) -> None:
    """Raise OutOfSpace when an MP4 file ffmpeg wrote ends inside a box: ffmpeg 5's HLS and MP4
    muxers exit 0 when a write fails (ENOSPC, EFBIG), so a full disk shows only as a file cut
    short. Reads the box headers only."""
    size = path.stat().st_size
    at = 0
    with path.open("rb") as data:
        while at < size:
            data.seek(at)
            end = box_end(data.read(16), at)
            if end == -1:
                return
            if end is None or end > size:
                raise OutOfSpace(
                    f"{path.name} was written only in part ({size} bytes); a write failed, "
                    "most likely for want of disk space"
                )
            at = end


def _rendition(rung: Rung, variant: playlists.Variant) -> dict[str, Any]:
    return {
        "name": rung.name,
        "width": rung.width,
        "height": rung.height,
        "bandwidth": variant.peak_bandwidth,
        "average_bandwidth": variant.average_bandwidth,
        "codecs": variant.codecs,
        "frame_rate": variant.frame_rate,
    }
