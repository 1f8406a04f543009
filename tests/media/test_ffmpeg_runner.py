"""Running ffmpeg: progress as it encodes, and nothing left running after a cancel or timeout."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import psutil
import pytest

from reelout.media import ffmpeg
from reelout.media.ffmpeg import FfmpegCancelled, FfmpegError, RunLimits

TOOLS = ffmpeg.find_tools()


def endless_encode(out: Path) -> list[str]:
    """An encode that would run for minutes: a 10-minute test picture to x264."""
    return [
        TOOLS.ffmpeg, "-hide_banner", "-nostdin", "-y", "-v", "error", "-nostats",
        "-progress", "pipe:1", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30:duration=600",
        "-c:v", "libx264", "-preset", "ultrafast", str(out),
    ]  # fmt: skip


def ffmpeg_children() -> list[psutil.Process]:
    return [p for p in psutil.process_iter(["name", "ppid"]) if p.info["name"] == "ffmpeg"
            and p.info["ppid"] == psutil.Process().pid]  # fmt: skip


def test_progress_is_reported_as_the_encode_goes(tmp_path: Path) -> None:
    seen: list[float] = []
    args = endless_encode(tmp_path / "out.mp4")
    args[args.index("testsrc2=size=640x360:rate=30:duration=600")] = (
        "testsrc2=size=320x180:rate=30:duration=3"
    )
    ffmpeg.run(args, RunLimits(timeout=60), seen.append)
    assert seen == sorted(seen), "progress never goes back"
    assert seen[-1] == pytest.approx(3.0, abs=0.1)


def test_a_cancel_kills_ffmpeg_at_once(tmp_path: Path) -> None:
    cancelled = threading.Event()
    threading.Timer(0.5, cancelled.set).start()
    started = time.monotonic()
    with pytest.raises(FfmpegCancelled):
        ffmpeg.run(endless_encode(tmp_path / "out.mp4"), RunLimits(timeout=60, cancelled=cancelled))
    assert time.monotonic() - started < 5
    assert ffmpeg_children() == []


def test_a_timeout_kills_ffmpeg_and_says_so(tmp_path: Path) -> None:
    with pytest.raises(FfmpegError) as failed:
        ffmpeg.run(endless_encode(tmp_path / "out.mp4"), RunLimits(timeout=0.5))
    assert failed.value.code == "ERR_TIMEOUT"
    assert "longer than 0.5 s" in failed.value.text
    assert ffmpeg_children() == []


def test_ffmpeg_runs_niced(tmp_path: Path) -> None:
    niceness: list[int] = []

    def look(_: float) -> None:
        niceness.extend(p.nice() for p in ffmpeg_children())

    cancelled = threading.Event()
    threading.Timer(1.0, cancelled.set).start()
    with pytest.raises(FfmpegCancelled):
        ffmpeg.run(
            endless_encode(tmp_path / "out.mp4"),
            RunLimits(timeout=60, nice=7, cancelled=cancelled),
            look,
        )
    assert niceness and set(niceness) == {psutil.Process().nice() + 7}
