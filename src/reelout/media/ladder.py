"""The encoding plan for a source: which renditions (rungs), at what size, rate and bitrate.

Pure: a function of the probe (`SourceInfo`) and the limits, no I/O, so every rule of
../shared/specs/hls-checks.md ("Recipe") is tested directly and with Hypothesis.

The rules, where the recipe leaves room:
- Rungs are named by their SHORT side (240, 360, 480, 720, 1080) and sized from the source's
  display size (SAR squared, rotation applied), so a portrait source gets portrait rungs.
- Never upscale: only standard rungs at or below the source's short side. A source more than
  10 % above the highest standard rung it reaches (e.g. 540p, above 480p) also gets a native
  top rung at its own short side; anything at or above 1080 tops out at 1080. A source below
  240 gets exactly one rung at its own size.
- The long side is short side times the aspect rounded to the nearest even number (never beyond the source);
  both sides are even. Every rung keeps the source's aspect within one even-pixel step, which is
  within 1 % once the long side reaches 100 px (always, for the standard rungs).
- Bitrate caps: 400/800/1400/2800/5000 kbps for 240…1080; a native rung interpolates linearly
  in pixel count between its standard neighbours (below 240: 400 kbps scaled by pixel count,
  at least 100 kbps), so caps rise with size.
- Frame rate: sources at 20 fps or more are snapped to the nearest of 23.976, 24, 25, 29.97,
  30, 50, 59.94, 60, which caps it at 60. A high-speed rate (90 fps or more) is first halved
  until it is below 90, so frames are dropped evenly (120 → 60, 100 → 50, 119.88 → 59.94,
  240 → 60), while 60.3 (a jittery 60) stays 60. Below 20 fps the source's own rate is kept:
  inventing frames would only cost bits. An unknown rate is taken as 30.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from reelout.media.errors import VideoFailed
from reelout.media.probe import SourceInfo, VideoStream

STANDARD_SHORT_SIDES = (240, 360, 480, 720, 1080)
VIDEO_MAXRATE_KBPS = {240: 400, 360: 800, 480: 1400, 720: 2800, 1080: 5000}
MIN_VIDEO_MAXRATE_KBPS = 100  # floor for rungs below 240p
NATIVE_RUNG_MARGIN = Fraction(11, 10)  # a native top rung when the source is >10 % above a rung
STANDARD_FRAME_RATES = (
    Fraction(24000, 1001),
    Fraction(24),
    Fraction(25),
    Fraction(30000, 1001),
    Fraction(30),
    Fraction(50),
    Fraction(60000, 1001),
    Fraction(60),
)
HALVED_FRAME_RATE = Fraction(90)  # at or above this, the rate is halved before snapping
MIN_SNAPPED_FRAME_RATE = Fraction(20)  # below this the source's rate is kept as it is
UNKNOWN_FRAME_RATE = Fraction(30)
SEGMENT_SECONDS = 4
KEYFRAME_SECONDS = 2


@dataclass(frozen=True)
class Rung:
    """One rendition. `short_side` names it ("720p" for 1280x720 and for 720x1280)."""

    width: int  # even, display orientation (portrait sources give width < height)
    height: int  # even
    video_maxrate_kbps: int  # x264 maxrate; bufsize is twice this
    audio_kbps: int  # AAC-LC stereo bitrate muxed into this rendition

    @property
    def short_side(self) -> int:
        return min(self.width, self.height)

    @property
    def name(self) -> str:
        return f"{self.short_side}p"

    @property
    def video_bufsize_kbps(self) -> int:
        return 2 * self.video_maxrate_kbps


@dataclass(frozen=True)
class AudioPlan:
    stream_index: int  # the source stream to encode (the default one)
    channels: int = 2  # always stereo: mono is upmixed, 5.1 downmixed
    sample_rate: int = 48000


@dataclass(frozen=True)
class Plan:
    rungs: tuple[Rung, ...]  # ascending by size; never larger than the source
    frame_rate: Fraction  # constant output rate (VFR sources are converted to it)
    gop_frames: int  # frames per 2 s keyframe interval at frame_rate
    segment_seconds: int  # 4
    keyframe_seconds: int  # 2
    video_stream_index: int
    audio: AudioPlan | None  # None: the source has no audio
    tone_map: bool  # HDR or >8-bit source: tone-map to bt709 8-bit
    rotation: int  # the source's display rotation, applied by the decoder's autorotate
    sar: Fraction  # the source's SAR, squared by scaling

    @property
    def top(self) -> Rung:
        return self.rungs[-1]


@dataclass(frozen=True)
class Limits:
    """What a source may be; each is a named, configurable setting."""

    max_duration_seconds: float
    max_pixels: int  # coded width * height of the source (what decoding costs)
    min_short_side: int = 16  # display pixels; smaller is not a picture worth encoding


class PlanError(VideoFailed):
    """The source is outside the limits; `code` is a video error code (ERR_DURATION_LIMIT, ...)."""


def plan_ladder(src: SourceInfo, limits: Limits) -> Plan:
    """The renditions and encoding settings for `src`, or PlanError if it is out of limits."""
    video = _checked_video(src, limits)
    frame_rate = output_frame_rate(video.nominal_frame_rate)
    main_audio = src.main_audio
    return Plan(
        rungs=ladder_rungs(*video.display_size),
        frame_rate=frame_rate,
        gop_frames=max(1, round(KEYFRAME_SECONDS * frame_rate)),
        segment_seconds=SEGMENT_SECONDS,
        keyframe_seconds=KEYFRAME_SECONDS,
        video_stream_index=video.index,
        audio=AudioPlan(stream_index=main_audio.index) if main_audio else None,
        tone_map=video.is_hdr,
        rotation=video.rotation,
        sar=video.sar,
    )


def _checked_video(src: SourceInfo, limits: Limits) -> VideoStream:
    video = src.video
    if video is None:
        raise PlanError("ERR_NON_VIDEO", "the file has no video stream")
    if src.duration > limits.max_duration_seconds:
        raise PlanError(
            "ERR_DURATION_LIMIT",
            f"the video lasts {src.duration:.0f} s; the limit is "
            f"{limits.max_duration_seconds:.0f} s",
        )
    if video.width * video.height > limits.max_pixels:
        raise PlanError(
            "ERR_RESOLUTION_LIMIT",
            f"the video is {video.width}x{video.height} "
            f"({video.width * video.height} pixels); the limit is {limits.max_pixels} pixels",
        )
    if min(video.display_size) < limits.min_short_side:
        width, height = video.display_size
        raise PlanError(
            "ERR_RESOLUTION_LIMIT",
            f"the video is {width}x{height}; it must be at least "
            f"{limits.min_short_side} pixels on its short side",
        )
    return video


def ladder_rungs(display_width: int, display_height: int) -> tuple[Rung, ...]:
    """The rungs for a picture shown at this size, smallest first, in its orientation."""
    portrait = display_height > display_width
    short, long = sorted((display_width, display_height))
    aspect = Fraction(long, short)
    rungs = []
    for side in rung_short_sides(short):
        long_side = min(_nearest_even(side * aspect), _even_floor(long))
        width, height = (side, long_side) if portrait else (long_side, side)
        rungs.append(Rung(width, height, video_maxrate_kbps(side), audio_kbps(side)))
    return tuple(rungs)


def rung_short_sides(source_short_side: int) -> tuple[int, ...]:
    """Standard short sides up to the source's (at most 1080), plus a native top if it is
    well above the last one; a source below 240 gets its own (even) short side only."""
    top = min(source_short_side, STANDARD_SHORT_SIDES[-1])
    sides = [side for side in STANDARD_SHORT_SIDES if side <= top]
    if not sides:
        return (_even_floor(source_short_side),)
    if top > sides[-1] * NATIVE_RUNG_MARGIN:
        sides.append(_even_floor(top))
    return tuple(sides)


def video_maxrate_kbps(short_side: int) -> int:
    """x264 maxrate for a rung: the standard cap, or interpolated in pixel count between the
    standard rungs around a native one (below 240p: scaled down from 240p, with a floor)."""
    if short_side in VIDEO_MAXRATE_KBPS:
        return VIDEO_MAXRATE_KBPS[short_side]
    lowest = STANDARD_SHORT_SIDES[0]
    if short_side < lowest:
        scaled = VIDEO_MAXRATE_KBPS[lowest] * Fraction(short_side, lowest) ** 2
        return max(MIN_VIDEO_MAXRATE_KBPS, round(scaled))
    below = max(side for side in STANDARD_SHORT_SIDES if side < short_side)
    above = min(side for side in STANDARD_SHORT_SIDES if side > short_side)
    share = Fraction(short_side**2 - below**2, above**2 - below**2)
    low, high = VIDEO_MAXRATE_KBPS[below], VIDEO_MAXRATE_KBPS[above]
    return round(low + (high - low) * share)


def audio_kbps(short_side: int) -> int:
    """AAC-LC stereo bitrate muxed into a rung: 64k below 360p, 96k below 480p, else 128k."""
    if short_side < 360:
        return 64
    if short_side < 480:
        return 96
    return 128


def output_frame_rate(source_rate: Fraction | None) -> Fraction:
    """The constant output rate for a source's nominal (average) rate; see the module notes."""
    if source_rate is None or source_rate <= 0:
        return UNKNOWN_FRAME_RATE
    if source_rate < MIN_SNAPPED_FRAME_RATE:
        return source_rate
    rate = source_rate
    while rate >= HALVED_FRAME_RATE:
        rate /= 2
    return min(STANDARD_FRAME_RATES, key=lambda standard: abs(standard - rate))


def _nearest_even(value: Fraction) -> int:
    return max(2, 2 * round(value / 2))


def _even_floor(value: int) -> int:
    return max(2, value - value % 2)
