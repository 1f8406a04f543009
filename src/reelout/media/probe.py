"""What a source file holds: ffprobe's (or PyAV's) view of it, reduced to what planning needs.

`parse_ffprobe` is pure (ffprobe JSON in, `SourceInfo` out); `probe` runs ffprobe, or PyAV when
no ffprobe is on PATH, and raises `ProbeError` with a video error code for unusable input:

- ERR_NON_VIDEO: empty, not a media file at all, a still image, or no video stream (audio only,
  or only cover art);
- ERR_MALFORMED: a known container that cannot be read (an MP4 cut before its index), whose
  index describes more bytes than the file holds (an MP4 with its index first, cut short), or
  whose duration or picture size is unknown;
- ERR_TIMEOUT: ffprobe did not finish in time.

The PyAV path builds a dict in ffprobe's JSON shape and goes through the same parser, so both
paths apply the same rules. What PyAV does not give, and how it is filled in: the rotation (read
from the first decoded frame's display matrix instead of the stream's side data),
`bits_per_raw_sample` (the bit depth comes from the pixel format) and the names of colour
matrices beyond the common ones. PyAV opens local files without a timeout.

Only the demuxers of `containers.InputPolicy` are ever used, with the local file protocol only:
a playlist, a list of files or an image sequence is refused (ERR_NON_VIDEO) before its demuxer
reads anything, so it can name no other file.

Hand-written: `sniff` checks the first bytes for a handful of video container signatures. It
only words the error when a file cannot be opened at all: ffprobe picks its demuxer from the
".mp4" extension too, so a text file named .mp4 fails exactly like an MP4 that lost its index
("moov atom not found"), and only the bytes tell them apart; and a refused demuxer (an FLV when
FLV is off) fails like any unreadable file.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
from av.video.reformatter import ColorPrimaries, ColorTrc

from reelout.media.containers import ACCEPTABLE, InputPolicy, file_url
from reelout.media.errors import VideoFailed
from reelout.media.sandbox import Sandbox
from reelout.media.sandbox import run as sandbox_run

PROBE_TIMEOUT_SECONDS = 60.0
DEFAULT_POLICY = InputPolicy()
VFR_TOLERANCE = Fraction(1, 100)  # r_frame_rate vs avg_frame_rate
TRUNCATION_MARGIN = 1.1  # the index may describe up to 10 % more bytes than the file holds
STILL_IMAGE_FORMATS = ("image2", "_pipe")  # ffprobe's demuxers for single pictures
# PyAV gives colour matrices as numbers (ITU-T H.273); ffprobe's names for those that matter
COLOR_MATRICES = {1: "bt709", 5: "bt470bg", 6: "smpte170m", 9: "bt2020nc", 10: "bt2020c"}


class ProbeError(VideoFailed):
    """The source cannot be used; `code` is one of the video error codes (ERR_NON_VIDEO, ...)."""


MAX_BASE_RATE = 240


@dataclass(frozen=True)
class VideoStream:
    index: int
    codec: str  # ffprobe codec_name: "h264", "hevc", "vp9", ...
    width: int  # coded (stored) pixels, before rotation and SAR
    height: int
    sar: Fraction = Fraction(1)  # sample aspect ratio; 1 when unknown or 0:1
    # display rotation in degrees counter-clockwise (the display matrix's sense, as ffprobe's
    # "rotation" reports it), normalised to 0, 90, 180 or 270
    rotation: int = 0
    frame_rate: Fraction | None = None  # average frame rate; None when unknown
    variable_frame_rate: bool = False  # r_frame_rate and avg_frame_rate disagree
    base_frame_rate: Fraction | None = None  # ffprobe's r_frame_rate
    duration: float | None = None  # seconds of picture, when the container says
    pix_fmt: str = "yuv420p"
    bit_depth: int = 8
    color_transfer: str | None = None  # "smpte2084" (PQ), "arib-std-b67" (HLG), "bt709", ...
    color_primaries: str | None = None
    color_space: str | None = None

    @property
    def nominal_frame_rate(self) -> Fraction | None:
        """The rate the picture was shot at. For a variable-rate stream that is its base rate
        (r_frame_rate): a phone that drops frames under load still shot at 30 fps, while the
        average says 20. A base rate above MAX_BASE_RATE is a timebase, not a rate; then the
        average is all there is."""
        base = self.base_frame_rate
        if self.variable_frame_rate and base is not None and base <= MAX_BASE_RATE:
            return base
        return self.frame_rate

    @property
    def is_hdr(self) -> bool:
        """PQ or HLG transfer, or more than 8 bits per sample: needs tone mapping to bt709."""
        return self.color_transfer in ("smpte2084", "arib-std-b67") or self.bit_depth > 8

    @property
    def display_size(self) -> tuple[int, int]:
        """Width and height as shown: square pixels (SAR applied to the width), then rotated."""
        width = round(self.width * self.sar) if self.sar != 1 else self.width
        if self.rotation % 180 == 90:
            return self.height, width
        return width, self.height


@dataclass(frozen=True)
class AudioStream:
    index: int
    codec: str
    channels: int
    sample_rate: int
    default: bool = False


@dataclass(frozen=True)
class SourceInfo:
    format_name: str
    duration: float  # seconds
    size: int  # bytes
    bit_rate: int | None = None
    video: VideoStream | None = None
    audio: tuple[AudioStream, ...] = field(default_factory=tuple)

    @property
    def main_audio(self) -> AudioStream | None:
        """The stream a player would pick: the default-flagged one, else the first."""
        for stream in self.audio:
            if stream.default:
                return stream
        return self.audio[0] if self.audio else None


# --- ffprobe JSON → SourceInfo (pure) ---------------------------------------------------------


def parse_ffprobe(doc: dict[str, Any], size: int) -> SourceInfo:
    """The SourceInfo for `ffprobe -show_format -show_streams -print_format json` output of a
    file of `size` bytes; ProbeError when it is not a usable video."""
    fmt: dict[str, Any] = doc.get("format") or {}
    streams: list[dict[str, Any]] = doc.get("streams") or []
    format_name = str(fmt.get("format_name") or "unknown")
    video_doc = _main_video(streams)
    if video_doc is None:
        raise ProbeError("ERR_NON_VIDEO", _no_video_text(streams))
    if format_name.endswith(STILL_IMAGE_FORMATS):
        raise ProbeError("ERR_NON_VIDEO", f"the file is a still image ({format_name}), not a video")
    duration = _number(fmt.get("duration")) or _number(video_doc.get("duration"))
    if not duration or duration <= 0:
        raise ProbeError("ERR_MALFORMED", "the file's duration is unknown; it may be damaged")
    _check_complete(format_name, streams, size)
    return SourceInfo(
        format_name=format_name,
        duration=duration,
        size=size,
        bit_rate=_integer(fmt.get("bit_rate")),
        video=parse_video_stream(video_doc),
        audio=tuple(parse_audio_stream(s) for s in streams if s.get("codec_type") == "audio"),
    )


def parse_video_stream(stream: dict[str, Any]) -> VideoStream:
    width, height = _integer(stream.get("width")), _integer(stream.get("height"))
    if not width or not height:
        raise ProbeError("ERR_MALFORMED", "the video stream has no picture size; it may be damaged")
    average = _rate(stream.get("avg_frame_rate"))
    real = _rate(stream.get("r_frame_rate"))
    pix_fmt = str(stream.get("pix_fmt") or "yuv420p")
    return VideoStream(
        index=int(stream["index"]),
        codec=str(stream.get("codec_name") or "unknown"),
        width=width,
        height=height,
        sar=_sample_aspect_ratio(stream.get("sample_aspect_ratio")),
        rotation=_rotation(stream),
        frame_rate=average or real,
        variable_frame_rate=bool(
            average and real and abs(real - average) > average * VFR_TOLERANCE
        ),
        base_frame_rate=real,
        duration=_number(stream.get("duration")),
        pix_fmt=pix_fmt,
        bit_depth=_integer(stream.get("bits_per_raw_sample")) or bit_depth_of(pix_fmt),
        color_transfer=stream.get("color_transfer"),
        color_primaries=stream.get("color_primaries"),
        color_space=stream.get("color_space"),
    )


def parse_audio_stream(stream: dict[str, Any]) -> AudioStream:
    return AudioStream(
        index=int(stream["index"]),
        codec=str(stream.get("codec_name") or "unknown"),
        channels=_integer(stream.get("channels")) or 0,
        sample_rate=_integer(stream.get("sample_rate")) or 0,
        default=_flag(stream, "default"),
    )


def bit_depth_of(pix_fmt: str) -> int:
    """Bits per sample of a pixel format ("yuv420p10le" → 10); 8 when the name is unknown."""
    try:
        return int(av.VideoFormat(pix_fmt).components[0].bits)
    except ValueError:
        return 8


def normalise_rotation(degrees: float) -> int:
    """A rotation in degrees as 0, 90, 180 or 270 (the nearest quarter turn)."""
    return round(degrees / 90) * 90 % 360


def _main_video(streams: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The default-flagged moving-picture stream, else the first; cover art does not count."""
    videos = [s for s in streams if s.get("codec_type") == "video" and not _flag(s, "attached_pic")]
    defaults = [s for s in videos if _flag(s, "default")]
    return next(iter(defaults or videos), None)


def _no_video_text(streams: list[dict[str, Any]]) -> str:
    if any(s.get("codec_type") == "video" for s in streams):
        return "the file holds only a still picture (cover art), no video"
    audio = [str(s.get("codec_name")) for s in streams if s.get("codec_type") == "audio"]
    if audio:
        return f"the file holds only audio ({', '.join(audio)}), no video"
    return "the file holds no video stream"


def _check_complete(format_name: str, streams: list[dict[str, Any]], size: int) -> None:
    """An MP4/MOV whose index describes more media bytes than the file holds was cut short
    (ffprobe reads only the index, so it does not notice)."""
    if "mov" not in format_name.split(","):
        return
    described = 0.0
    for stream in streams:
        bit_rate, duration = _number(stream.get("bit_rate")), _number(stream.get("duration"))
        if bit_rate and duration:
            described += bit_rate * duration / 8
    if described > size * TRUNCATION_MARGIN:
        raise ProbeError(
            "ERR_MALFORMED",
            f"the file is incomplete: its index describes {described / 1e6:.1f} MB of media but "
            f"the file holds {size / 1e6:.1f} MB; upload it again",
        )


def _rotation(stream: dict[str, Any]) -> int:
    """From the display matrix (newer ffprobe) or the legacy `rotate` tag (clockwise)."""
    for item in stream.get("side_data_list") or []:
        if item.get("side_data_type") == "Display Matrix" and "rotation" in item:
            return normalise_rotation(float(item["rotation"]))
    tag = _number((stream.get("tags") or {}).get("rotate"))
    return normalise_rotation(-tag) if tag else 0


def _sample_aspect_ratio(value: object) -> Fraction:
    match = re.fullmatch(r"(\d+):(\d+)", str(value or ""))
    if not match or int(match[1]) == 0 or int(match[2]) == 0:
        return Fraction(1)
    return Fraction(int(match[1]), int(match[2]))


def _rate(value: object) -> Fraction | None:
    match = re.fullmatch(r"(\d+)/(\d+)", str(value or ""))
    if not match or int(match[1]) == 0 or int(match[2]) == 0:
        return None
    return Fraction(int(match[1]), int(match[2]))


def _flag(stream: dict[str, Any], name: str) -> bool:
    return bool((stream.get("disposition") or {}).get(name))


def _number(value: object) -> float | None:
    """A finite number from ffprobe's text ("1.000000"); None for "N/A", missing or nan."""
    try:
        number = float(str(value))
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _integer(value: object) -> int | None:
    number = _number(value)
    return int(number) if number is not None else None


# --- running ffprobe or PyAV ------------------------------------------------------------------


def probe(
    path: Path,
    ffprobe: str | None,
    timeout: float = PROBE_TIMEOUT_SECONDS,
    policy: InputPolicy = DEFAULT_POLICY,
    sandbox: Sandbox | None = None,
) -> SourceInfo:
    """What `path` holds, read with the ffprobe binary at `ffprobe` (PyAV when None), opened
    only with the demuxers `policy` accepts; ffprobe runs in `sandbox` (default: it may read
    `path` only)."""
    size = path.stat().st_size
    if size == 0:
        raise ProbeError("ERR_NON_VIDEO", "the file is empty (0 bytes)")
    if ffprobe:
        doc = run_ffprobe(path, ffprobe, timeout, policy, sandbox or Sandbox(reads=(path,)))
    else:
        doc = pyav_probe_doc(path, policy)
    info = parse_ffprobe(doc, size)
    if policy.demuxer(info.format_name) is None:  # the whitelist let nothing else through
        raise refused(info.format_name, policy)
    return info


def run_ffprobe(
    path: Path, ffprobe: str, timeout: float, policy: InputPolicy, sandbox: Sandbox
) -> dict[str, Any]:
    command = [ffprobe, "-v", "error", *policy.input_args()]
    command += ["-print_format", "json", "-show_format", "-show_streams", file_url(path)]
    try:
        done = sandbox_run(command, sandbox, timeout)
    except subprocess.TimeoutExpired:
        raise ProbeError(
            "ERR_TIMEOUT", f"reading the file took longer than {timeout:.0f} s and was stopped"
        ) from None
    if done.returncode != 0:
        raise unreadable(path, _ffprobe_complaint(done.stderr, path), policy)
    try:
        doc: dict[str, Any] = json.loads(done.stdout)
    except json.JSONDecodeError:
        raise ProbeError("ERR_MALFORMED", "ffprobe's report on the file was unreadable") from None
    return doc


def _ffprobe_complaint(stderr: str, path: Path) -> str:
    """ffprobe's error lines without the `[demuxer @ 0x…]` and file-name prefixes."""
    lines = []
    for line in stderr.splitlines():
        text = re.sub(r"^\[[^]]*\]\s*", "", line.strip())
        text = text.removeprefix(f"{file_url(path)}: ").removeprefix(f"{path}: ")
        if text and text not in lines:
            lines.append(text)
    return "; ".join(lines) or "ffprobe could not read it"


def unreadable(path: Path, detail: str, policy: InputPolicy = DEFAULT_POLICY) -> ProbeError:
    """The error for a file that cannot be opened: broken if it starts like an accepted video
    container, refused if it is a container we do not accept, else not a video at all."""
    with path.open("rb") as source:
        head = source.read(512)
    demuxer = sniff(head)
    picture = next((name for sig, name in IMAGE_SIGNATURES.items() if head.startswith(sig)), None)
    if picture is not None:
        return ProbeError("ERR_NON_VIDEO", f"the file is a still image ({picture}), not a video")
    if demuxer is not None and demuxer in policy.containers:
        return ProbeError(
            "ERR_MALFORMED",
            f"the file looks like {DESCRIPTIONS[demuxer]} but cannot be read; it may be cut "
            f"short or damaged ({detail})",
        )
    if demuxer is not None:
        return refused(ACCEPTABLE[demuxer], policy)
    return ProbeError(
        "ERR_NON_VIDEO",
        "the file is not a video, nor any media format we can read (playlists, lists of files "
        f"and image sequences are not accepted; accepted containers: {policy.describe()})",
    )


def refused(what: str, policy: InputPolicy) -> ProbeError:
    return ProbeError(
        "ERR_NON_VIDEO",
        f"the file is in a format that is not accepted ({what}); upload the video as one of: "
        f"{policy.describe()}",
    )


IMAGE_SIGNATURES = {
    b"\x89PNG": "PNG",
    b"\xff\xd8\xff": "JPEG",
    b"GIF8": "GIF",
    b"BM": "BMP",
    b"II*\x00": "TIFF",
    b"MM\x00*": "TIFF",
}
DESCRIPTIONS = {
    "mov": "an MP4/QuickTime file",
    "matroska": "a Matroska/WebM file",
    "asf": "an ASF/WMV file",
    "mpeg": "an MPEG program stream",
    "ogg": "an Ogg file",
    "flv": "an FLV file",
    "avi": "an AVI file",
    "mpegts": "an MPEG transport stream",
}


def container_name(head: bytes) -> str | None:
    """The video container the first bytes of a file announce, if any."""
    demuxer = sniff(head)
    return None if demuxer is None else DESCRIPTIONS[demuxer]


def sniff(head: bytes) -> str | None:
    """The demuxer for the container the first bytes of a file announce, if any."""
    if head[4:8] in (b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot"):
        return "mov"
    signatures = {
        b"\x1a\x45\xdf\xa3": "matroska",
        b"\x30\x26\xb2\x75": "asf",
        b"\x00\x00\x01\xba": "mpeg",
        b"OggS": "ogg",
        b"FLV": "flv",
    }
    for signature, name in signatures.items():
        if head.startswith(signature):
            return name
    if head.startswith(b"RIFF") and head[8:12] == b"AVI ":
        return "avi"
    if len(head) > 188 and head[0] == head[188] == 0x47:
        return "mpegts"
    return None


# --- PyAV, when there is no ffprobe -----------------------------------------------------------


def pyav_probe_doc(path: Path, policy: InputPolicy = DEFAULT_POLICY) -> dict[str, Any]:
    """The same facts ffprobe reports, read with PyAV, in ffprobe's JSON shape."""
    try:
        container = av.open(file_url(path), options=policy.options(), metadata_errors="ignore")
    except av.FFmpegError as error:
        raise unreadable(path, str(error.strerror or error), policy) from None
    with container:
        streams: list[dict[str, Any]] = []
        for stream in container.streams:
            if isinstance(stream, av.VideoStream):
                streams.append(_pyav_video(stream))
            elif isinstance(stream, av.AudioStream):
                streams.append(_pyav_audio(stream))
        main = _main_video(streams)
        if main is not None:
            main["side_data_list"] = _pyav_display_matrix(container, int(main["index"]))
        return {"format": _pyav_format(container), "streams": streams}


def _pyav_format(container: av.container.InputContainer) -> dict[str, Any]:
    duration = container.duration
    return {
        "format_name": container.format.name,
        "duration": str(duration / av.time_base) if duration else None,
        "bit_rate": str(container.bit_rate) if container.bit_rate else None,
    }


def _pyav_common(stream: av.stream.Stream) -> dict[str, Any]:
    duration = None
    if stream.duration is not None and stream.time_base is not None:
        duration = str(float(stream.duration * stream.time_base))
    return {
        "index": stream.index,
        "codec_name": stream.codec_context.name,
        "duration": duration,
        "disposition": {
            "default": int(bool(stream.disposition & av.stream.Disposition.default)),
            "attached_pic": int(bool(stream.disposition & av.stream.Disposition.attached_pic)),
        },
    }


def _pyav_video(stream: av.VideoStream) -> dict[str, Any]:
    context = stream.codec_context
    sar = stream.sample_aspect_ratio
    return {
        **_pyav_common(stream),
        "codec_type": "video",
        "width": context.width,
        "height": context.height,
        "sample_aspect_ratio": f"{sar.numerator}:{sar.denominator}" if sar else None,
        "avg_frame_rate": _ratio_text(stream.average_rate),
        "r_frame_rate": _ratio_text(stream.base_rate),
        "pix_fmt": context.pix_fmt,
        "bit_rate": str(stream.bit_rate) if stream.bit_rate else None,
        "color_transfer": _enum_name(ColorTrc, context.color_trc),
        "color_primaries": _enum_name(ColorPrimaries, context.color_primaries),
        "color_space": COLOR_MATRICES.get(context.colorspace),
    }


def _pyav_audio(stream: av.AudioStream) -> dict[str, Any]:
    context = stream.codec_context
    return {
        **_pyav_common(stream),
        "codec_type": "audio",
        "channels": context.layout.nb_channels,
        "sample_rate": str(context.sample_rate),
        "bit_rate": str(context.bit_rate) if context.bit_rate else None,
    }


def _pyav_display_matrix(
    container: av.container.InputContainer, index: int
) -> list[dict[str, Any]]:
    """The rotation of the first decodable frame (PyAV shows no stream side data)."""
    try:
        frame = next(container.decode(container.streams[index]), None)
    except av.FFmpegError:
        return []
    if frame is None or not isinstance(frame, av.VideoFrame):
        return []
    return [{"side_data_type": "Display Matrix", "rotation": frame.rotation}]


def _ratio_text(value: Fraction | None) -> str:
    return f"{value.numerator}/{value.denominator}" if value else "0/0"


def _enum_name(enum: type[ColorTrc] | type[ColorPrimaries], value: int) -> str | None:
    """ffprobe's name for a colour property ("arib-std-b67"); None when unspecified/unknown."""
    try:
        name = enum(value).name.lower().replace("_", "-")
    except ValueError:
        return None
    return None if name == "unspecified" else name
