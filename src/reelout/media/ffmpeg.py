"""Finding ffmpeg and running it: own process group, niced, confined, progress, timeout, cancel,
errors (a full disk is not the video's fault: `OutOfSpace`, retried).

Which binaries: REELOUT_FFMPEG / REELOUT_FFPROBE if set, else the ones on PATH (Debian's), else
the build that the `imageio-ffmpeg` wheel ships (no ffprobe: probing then goes through PyAV).
Hand-written because no maintained library both streams `-progress` and kills a whole
process group on timeout or cancel; `subprocess` does the rest.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import shutil
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from reelout.media.errors import OutOfSpace, VideoFailed
from reelout.media.sandbox import Ledger, Sandbox, spawn

log = logging.getLogger(__name__)


class FfmpegError(VideoFailed):
    """ffmpeg failed; `code` is a video error code (ERR_DECODE, ERR_TIMEOUT)."""


class FfmpegCancelled(Exception):
    """The run was stopped from outside (worker shutdown, lost lease); nothing is wrong with
    the video."""


@dataclass(frozen=True)
class Tools:
    ffmpeg: str
    ffprobe: str | None  # None: probe with PyAV
    origin: str  # where they came from, for the start-up log line
    version: str
    confinement_problem: str | None = None  # why they cannot run confined, if they cannot


def _version(ffmpeg: str) -> str:
    try:
        out = subprocess.run(
            [ffmpeg, "-hide_banner", "-version"], capture_output=True, text=True, timeout=20
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    first = out.splitlines()[0] if out else ""
    return first.split(" ")[2] if first.startswith("ffmpeg version ") else "unknown"


def find_tools(ffmpeg: str | None = None, ffprobe: str | None = None) -> Tools:
    """The ffmpeg (and ffprobe) to use; explicit paths win, then PATH, then imageio-ffmpeg."""
    if ffmpeg:
        return Tools(ffmpeg, ffprobe or shutil.which("ffprobe"), "configured", _version(ffmpeg))
    on_path = shutil.which("ffmpeg")
    if on_path:
        return Tools(on_path, ffprobe or shutil.which("ffprobe"), "PATH", _version(on_path))
    import imageio_ffmpeg

    bundled = imageio_ffmpeg.get_ffmpeg_exe()
    return Tools(bundled, ffprobe, "imageio-ffmpeg", _version(bundled))


@dataclass
class RunLimits:
    timeout: float  # seconds of wall time before the run is killed (ERR_TIMEOUT)
    nice: int = 10  # added niceness, so encoding never starves the API
    cancelled: threading.Event | None = None
    # what ffmpeg may touch; unconfined unless the caller names its files (nice is ours)
    sandbox: Sandbox = field(default_factory=lambda: Sandbox(confine=False))
    ledger: Ledger | None = None  # where running children are recorded
    cwd: Path | None = None


# what ffmpeg prints when a write fails for want of space (ENOSPC, EFBIG, EDQUOT)
NO_SPACE_MESSAGES = ("No space left on device", "File too large", "Disk quota exceeded")


ProgressFn = Callable[[float], None]
POLL_SECONDS = 0.5  # how often a run checks for cancel and timeout and reports progress  # seconds of output written so far


class _Progress:
    """Reads ffmpeg's `-progress pipe:1` key=value lines and keeps the latest out_time."""

    def __init__(self, stream: IO[str]) -> None:
        self.seconds = 0.0
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            key, _, value = line.strip().partition("=")
            if key == "out_time_us" and value.lstrip("-").isdigit():
                self.seconds = max(self.seconds, int(value) / 1_000_000)

    def join(self) -> None:
        self._thread.join(timeout=5)


class _Tail:
    """Keeps the last lines of ffmpeg's stderr for the error message."""

    def __init__(self, stream: IO[str], lines: int = 20) -> None:
        self.lines: deque[str] = deque(maxlen=lines)
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            if line.strip():
                self.lines.append(line.rstrip())

    def mentions(self, texts: tuple[str, ...]) -> bool:
        """Whether any kept line contains one of `texts` (call after `last`)."""
        return any(text in line for line in self.lines for text in texts)

    def last(self, count: int) -> str:
        """The last `count` distinct lines, oldest first (ffmpeg repeats itself per frame)."""
        self._thread.join(timeout=5)
        distinct: list[str] = []
        for line in reversed(self.lines):
            if line not in distinct:
                distinct.append(line)
            if len(distinct) == count:
                break
        return " / ".join(reversed(distinct))


def _kill(proc: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _start(args: list[str], limits: RunLimits) -> subprocess.Popen[str]:
    sandbox = dataclasses.replace(limits.sandbox, nice=limits.nice)
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
    return spawn(args, sandbox, stdin=subprocess.DEVNULL, cwd=limits.cwd, **pipes)


def run(args: list[str], limits: RunLimits, on_progress: ProgressFn | None = None) -> None:
    """Run one ffmpeg command to the end; raise FfmpegError, OutOfSpace or FfmpegCancelled."""
    proc = _start(args, limits)
    entry = _record(proc, limits.ledger)
    try:
        _follow(proc, limits, on_progress)
    finally:
        if entry is not None:
            Ledger.remove(entry)


def _record(proc: subprocess.Popen[str], ledger: Ledger | None) -> Path | None:
    """Note the child in the ledger; a failed note (a full disk) does not stop the run, since
    PR_SET_PDEATHSIG still ends the child with its worker."""
    if ledger is None:
        return None
    try:
        return ledger.add(proc.pid)
    except OSError as exc:
        log.warning("media: could not record ffmpeg %s in %s: %s", proc.pid, ledger.folder, exc)
        return None


def _follow(proc: subprocess.Popen[str], limits: RunLimits, on_progress: ProgressFn | None) -> None:
    assert proc.stdout is not None
    assert proc.stderr is not None
    progress, tail = _Progress(proc.stdout), _Tail(proc.stderr)
    deadline = time.monotonic() + limits.timeout
    try:
        while proc.poll() is None:
            if limits.cancelled is not None and limits.cancelled.is_set():
                raise FfmpegCancelled("stopped while ffmpeg ran")
            if time.monotonic() > deadline:
                raise FfmpegError(
                    "ERR_TIMEOUT",
                    f"encoding took longer than {limits.timeout:g} s and was stopped",
                )
            if on_progress is not None:
                on_progress(progress.seconds)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=min(POLL_SECONDS, max(deadline - time.monotonic(), 0.001)))
    finally:
        if proc.poll() is None:
            _kill(proc)
        progress.join()
    detail = tail.last(3) or f"exit status {proc.returncode}"
    if tail.mentions(NO_SPACE_MESSAGES):  # ffmpeg 5 exits 0 when only the trailer's write failed
        raise OutOfSpace(f"ffmpeg ran out of disk space: {detail}")
    if proc.returncode != 0:
        raise FfmpegError("ERR_DECODE", f"the video could not be decoded; ffmpeg said: {detail}")
    if on_progress is not None:
        on_progress(progress.seconds)
