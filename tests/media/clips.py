"""Tiny test videos, one kind per case the probe and the pipeline must handle.

Made with ffmpeg's lavfi sources (testsrc2 pictures, a sine tone), at most 2 s long and
encoded with x264 `ultrafast`, so each takes a fraction of a second. The ffmpeg on PATH is used
(Debian's 5.1), else the imageio-ffmpeg build. The `clips` fixture in conftest.py caches them.

Kinds (display size; audio):
  landscape 1920x1080 stereo · portrait 1080x1920 stereo · rotated 1920x1080 stored, 90° display
  matrix, so 1080x1920 shown · anamorphic 1440x1080 stored with SAR 4:3, 1920x1080 shown ·
  p720 1280x720 · p540 960x540 · tiny 320x180 · no_audio 640x360 · mono / surround (5.1) /
  multi_audio (two tracks, the second flagged default) 640x360 · vfr 640x360, 30 fps for 1 s then
  every third frame · hdr 640x360 HEVC Main 10 HLG bt2020, no audio · audio_only (AAC in .m4a) ·
  cover_art (AAC plus an attached picture) · still (a PNG named .mp4) · truncated (landscape cut
  in half: its index, at the end, is lost) · truncated_faststart (index first, media cut in half) ·
  text (a text file named .mp4) · empty (zero bytes).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import imageio_ffmpeg

FFMPEG = shutil.which("ffmpeg") or imageio_ffmpeg.get_ffmpeg_exe()
X264 = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
AAC = ["-c:a", "aac", "-b:a", "64k"]

Clips = Callable[[str], Path]  # the fixture: kind -> path of a (cached) clip


def ffmpeg(*args: str) -> None:
    subprocess.run(
        [FFMPEG, "-v", "error", "-y", "-nostdin", *args],
        check=True,
        capture_output=True,
        timeout=60,
    )


def picture(width: int, height: int, seconds: float = 1, rate: int = 30) -> list[str]:
    source = f"testsrc2=size={width}x{height}:rate={rate}:duration={seconds}"
    return ["-f", "lavfi", "-i", source]


def tone(seconds: float = 1) -> list[str]:
    return ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}"]


def video_with_audio(out: Path, width: int, height: int, *options: str, channels: int = 2) -> None:
    ffmpeg(*picture(width, height), *tone(), *X264, *AAC, "-ac", str(channels), *options, str(out))


def video_only(out: Path, width: int, height: int, *options: str) -> None:
    ffmpeg(*picture(width, height), *X264, *options, str(out))


def make_multi_audio(out: Path) -> None:
    """Two audio tracks: a silent one first, then the default one (index 2), a tone."""
    silence = ["-f", "lavfi", "-t", "1", "-i", "anullsrc=channel_layout=stereo:sample_rate=48000"]
    ffmpeg(
        *picture(640, 360), *silence, *tone(),
        "-map", "0:v", "-map", "1:a", "-map", "2:a", *X264, *AAC, "-ac", "2",
        "-disposition:a:0", "0", "-disposition:a:1", "default", str(out),
    )  # fmt: skip


def make_vfr(out: Path) -> None:
    """2 s at 30 fps, of which the second second keeps only every third frame; 2 s of tone."""
    keep = "select='lt(n\\,30)+not(mod(n\\,3))'"
    ffmpeg(
        *picture(640, 360, seconds=2),
        *tone(2),
        "-vf",
        keep,
        "-fps_mode",
        "vfr",
        *X264,
        *AAC,
        str(out),
    )


def make_hdr(out: Path) -> None:
    ffmpeg(
        *picture(640, 360, rate=25),
        "-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "log-level=error",
        "-pix_fmt", "yuv420p10le", "-color_trc", "arib-std-b67", "-color_primaries", "bt2020",
        "-colorspace", "bt2020nc", "-tag:v", "hvc1", str(out),
    )  # fmt: skip


def make_rotated(out: Path) -> None:
    """The landscape clip with a 90° display matrix, remuxed (pixels untouched).

    ffmpeg ≥ 6 takes `-display_rotation` (and ignores the old `rotate` tag); 5.1 only knows
    the tag, which its muxer turns into a display matrix."""
    source = str(make_clip("landscape", out.parent))
    try:
        ffmpeg("-display_rotation", "90", "-i", source, "-c", "copy", str(out))
    except subprocess.CalledProcessError:
        ffmpeg("-i", source, "-c", "copy", "-metadata:s:v:0", "rotate=90", str(out))


def make_cover_art(out: Path) -> None:
    ffmpeg(
        *tone(), *picture(64, 64, seconds=0.04), "-map", "0", "-map", "1", *AAC,
        "-c:v", "mjpeg", "-frames:v", "1", "-disposition:v:0", "attached_pic", str(out),
    )  # fmt: skip


def make_still(out: Path) -> None:
    png = out.with_suffix(".png")
    ffmpeg(*picture(64, 64), "-frames:v", "1", str(png))
    png.rename(out)


def write(out: Path, data: bytes) -> None:
    out.write_bytes(data)


def cut_in_half(source: Path, out: Path) -> None:
    data = source.read_bytes()
    write(out, data[: len(data) // 2])


def make_truncated_faststart(out: Path) -> None:
    whole = out.with_name("faststart_whole.mp4")
    source = str(make_clip("landscape", out.parent))
    ffmpeg("-i", source, "-c", "copy", "-movflags", "+faststart", str(whole))
    cut_in_half(whole, out)


MAKERS: dict[str, Callable[[Path], None]] = {
    "landscape": lambda out: video_with_audio(out, 1920, 1080),
    "portrait": lambda out: video_with_audio(out, 1080, 1920),
    "rotated": make_rotated,
    "anamorphic": lambda out: video_with_audio(out, 1440, 1080, "-vf", "setsar=4/3"),
    "p720": lambda out: video_with_audio(out, 1280, 720),
    "p540": lambda out: video_with_audio(out, 960, 540),
    "tiny": lambda out: video_with_audio(out, 320, 180),
    "no_audio": lambda out: video_only(out, 640, 360),
    "mono": lambda out: video_with_audio(out, 640, 360, channels=1),
    "surround": lambda out: video_with_audio(out, 640, 360, channels=6),
    "multi_audio": make_multi_audio,
    "vfr": make_vfr,
    "hdr": make_hdr,
    "audio_only": lambda out: ffmpeg(*tone(), *AAC, str(out)),
    "cover_art": make_cover_art,
    "still": make_still,
    "truncated": lambda out: cut_in_half(make_clip("landscape", out.parent), out),
    "truncated_faststart": make_truncated_faststart,
    "text": lambda out: write(out, b"This is a shopping list, not a video.\nmilk\neggs\n"),
    "empty": lambda out: write(out, b""),
}
SUFFIXES = {"audio_only": ".m4a", "cover_art": ".m4a"}
KINDS = tuple(MAKERS)


def make_clip(kind: str, folder: Path) -> Path:
    """The clip of this kind in `folder`, made unless it is already there."""
    out = folder / f"{kind}{SUFFIXES.get(kind, '.mp4')}"
    if not out.exists():
        partial = out.with_name(f"partial_{out.name}")
        MAKERS[kind](partial)
        partial.rename(out)
    return out
