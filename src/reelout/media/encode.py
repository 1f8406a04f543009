"""The ffmpeg command lines of the pipeline: the one-pass HLS ladder, the MP4 fallback, the poster.

Pure: a plan and paths in, an argument list out, so each rule of the recipe in
../shared/specs/hls-checks.md is visible in one place and testable without running ffmpeg.
Every input is a `file:` URL read with the local file protocol only and a forced demuxer: the
source with the one the probe found (on the upload allowlist), our own MP4s with the MP4 one.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

from reelout.media.containers import OWN_OUTPUT, InputPolicy, file_url
from reelout.media.ladder import Plan, Rung
from reelout.media.probe import DEFAULT_POLICY, SourceInfo, refused

HLS_MASTER = "master.m3u8"
MEDIA_PLAYLIST = "index.m3u8"
SEGMENT_PATTERN = "seg_%05d.m4s"
X264_PRESET = "veryfast"
X264_CRF = 23

# HDR (PQ or HLG) to SDR bt709: linearise, convert primaries, tone-map (Hable), back to
# bt709's transfer and matrix in limited range.
TONE_MAP = (
    "zscale=t=linear:npl=100,format=gbrpf32le,zscale=p=bt709,"
    "tonemap=tonemap=hable:desat=0,zscale=t=bt709:m=bt709:r=tv"
)
BT709_TAGS = ["-color_primaries", "bt709", "-color_trc", "bt709", "-colorspace", "bt709"]


def _rate(rate: Fraction) -> str:
    return f"{rate.numerator}/{rate.denominator}"


def video_graph(plan: Plan, src: SourceInfo) -> str:
    """One decode, converted once (tone map, constant rate), then split into the rungs.

    Rotation is applied by ffmpeg's decoder-side autorotate before this graph, so the rung
    sizes (display orientation) are scaled to directly; `setsar=1` squares the pixels."""
    video = src.video
    pre = []
    if video is not None and video.color_transfer in ("smpte2084", "arib-std-b67"):
        pre.append(TONE_MAP)
    pre.append(f"fps={_rate(plan.frame_rate)}")
    count = len(plan.rungs)
    labels = "".join(f"[s{i}]" for i in range(count))
    parts = [f"[0:{plan.video_stream_index}]{','.join(pre)},split={count}{labels}"]
    for i, rung in enumerate(plan.rungs):
        parts.append(f"[s{i}]scale={rung.width}:{rung.height},setsar=1,format=yuv420p[v{i}]")
    return ";".join(parts)


def _rung_rates(index: int, rung: Rung, with_audio: bool) -> list[str]:
    args = [
        f"-maxrate:v:{index}",
        f"{rung.video_maxrate_kbps}k",
        f"-bufsize:v:{index}",
        f"{rung.video_bufsize_kbps}k",
    ]
    if with_audio:
        args += [f"-b:a:{index}", f"{rung.audio_kbps}k"]
    return args


def _maps(plan: Plan) -> list[str]:
    args: list[str] = []
    for i in range(len(plan.rungs)):
        args += ["-map", f"[v{i}]"]
        if plan.audio is not None:
            args += ["-map", f"0:{plan.audio.stream_index}"]
    return args


def picture_seconds(src: SourceInfo) -> float:
    """How long the picture lasts: the video stream's own duration when known."""
    video = src.video
    return video.duration if video is not None and video.duration else src.duration


def audio_filter(src: SourceInfo) -> str:
    """The picture sets the length: a short soundtrack is padded with silence and a long one
    cut where the picture ends, so the rungs' audio and video end together."""
    end = f"{picture_seconds(src):.6f}"
    return f"apad=whole_dur={end},atrim=end={end}"


def _codecs(plan: Plan, src: SourceInfo) -> list[str]:
    gop = str(plan.gop_frames)
    args = ["-c:v", "libx264", "-preset", X264_PRESET, "-profile:v", "high"]
    args += ["-crf", str(X264_CRF), "-g", gop, "-keyint_min", gop, "-sc_threshold", "0"]
    args += ["-force_key_frames", f"expr:gte(t,n_forced*{plan.keyframe_seconds})", *BT709_TAGS]
    if plan.audio is not None:
        args += ["-c:a", "aac", "-ac", str(plan.audio.channels), "-ar", str(plan.audio.sample_rate)]
        args += ["-af", audio_filter(src)]
    for i, rung in enumerate(plan.rungs):
        args += _rung_rates(i, rung, plan.audio is not None)
    return args


def stream_map(plan: Plan) -> str:
    """ffmpeg's -var_stream_map: each rung's video (and its own audio) under the rung's name."""
    audio = plan.audio is not None
    return " ".join(
        f"v:{i}" + (f",a:{i}" if audio else "") + f",name:{rung.name}"
        for i, rung in enumerate(plan.rungs)
    )


def source_input(src: SourceInfo, source: Path, policy: InputPolicy) -> list[str]:
    """The source as ffmpeg input: the probed demuxer forced, allowlists, a `file:` URL."""
    demuxer = policy.demuxer(src.format_name)
    if demuxer is None:
        raise refused(src.format_name, policy)
    return [*policy.input_args(demuxer), "-i", file_url(source)]


def own_input(path: Path) -> list[str]:
    """One of our own MP4s as ffmpeg input, read as nothing else."""
    return [*OWN_OUTPUT.input_args("mov"), "-i", file_url(path)]


def hls_command(
    ffmpeg: str,
    plan: Plan,
    src: SourceInfo,
    source: Path,
    out: Path,
    policy: InputPolicy = DEFAULT_POLICY,
) -> list[str]:
    """The one ffmpeg run: decode once, encode every rung, write fMP4 HLS under out/<rung>/."""
    return [
        ffmpeg,
        *("-hide_banner", "-nostdin", "-y", "-v", "error", "-nostats", "-progress", "pipe:1"),
        *source_input(src, source, policy),
        *("-filter_complex", video_graph(plan, src)),
        *_maps(plan),
        *_codecs(plan, src),
        *("-map_metadata", "-1", "-map_chapters", "-1"),
        *("-f", "hls", "-hls_time", str(plan.segment_seconds), "-hls_playlist_type", "vod"),
        *("-hls_segment_type", "fmp4", "-hls_fmp4_init_filename", "init.mp4"),
        *("-hls_flags", "independent_segments"),
        *("-hls_segment_filename", str(out / "%v" / SEGMENT_PATTERN)),
        *("-master_pl_name", HLS_MASTER, "-var_stream_map", stream_map(plan)),
        str(out / "%v" / MEDIA_PLAYLIST),
    ]


def mp4_command(ffmpeg: str, fragmented: Path, out: Path) -> list[str]:
    """The MP4 fallback: the top rung's init + segments (one fragmented MP4), remuxed with
    the index at the front so a progressive player starts before the download ends."""
    return [
        ffmpeg,
        *("-hide_banner", "-nostdin", "-y", "-v", "error"),
        *own_input(fragmented),
        *("-map", "0", "-c", "copy", "-movflags", "+faststart"),
        str(out),
    ]


def poster_time(duration: float) -> float:
    """min(1 s, 10 % of the duration): past a fade-in, inside even a very short clip."""
    return round(min(1.0, duration * 0.1), 3)


def poster_command(ffmpeg: str, mp4: Path, duration: float, out: Path) -> list[str]:
    """A JPEG from the (already rotated, SDR) MP4 fallback."""
    return [
        ffmpeg,
        *("-hide_banner", "-nostdin", "-y", "-v", "error"),
        *("-ss", f"{poster_time(duration):.3f}", *own_input(mp4)),
        *("-frames:v", "1", "-q:v", "3", "-update", "1"),
        str(out),
    ]
