"""Probing real clips with ffprobe and with PyAV, and reading ffprobe's JSON.

The clips come from tests/media/clips.py (made with ffmpeg on the fly); the JSON documents in
the second half are written out by hand in the shapes older and newer ffprobe builds print."""

from __future__ import annotations

import shutil
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from reelout.media.ladder import Limits, plan_ladder
from reelout.media.probe import (
    ProbeError,
    SourceInfo,
    VideoStream,
    container_name,
    parse_ffprobe,
    probe,
)
from tests.media.clips import Clips

FFPROBE = shutil.which("ffprobe")
needs_ffprobe = pytest.mark.skipif(FFPROBE is None, reason="no ffprobe on PATH")
LIMITS = Limits(max_duration_seconds=3600, max_pixels=4096 * 2304)


@pytest.fixture(params=[pytest.param("ffprobe", marks=needs_ffprobe), "pyav"])
def tool(request: pytest.FixtureRequest) -> str | None:
    """Each test runs once through ffprobe and once through PyAV (ffprobe=None)."""
    return FFPROBE if request.param == "ffprobe" else None


# --- real clips --------------------------------------------------------------------------------


def test_a_1080p_clip(clips: Clips, tool: str | None) -> None:
    info = probe(clips("landscape"), tool)
    assert info.format_name == "mov,mp4,m4a,3gp,3g2,mj2"
    assert info.duration == pytest.approx(1.0, abs=0.05)
    assert info.size == clips("landscape").stat().st_size
    assert info.video is not None
    assert (info.video.codec, info.video.width, info.video.height) == ("h264", 1920, 1080)
    assert (info.video.rotation, info.video.sar, info.video.frame_rate) == (
        0,
        Fraction(1),
        Fraction(30),
    )
    assert not info.video.variable_frame_rate
    assert (info.video.bit_depth, info.video.is_hdr) == (8, False)
    assert [(a.codec, a.channels, a.sample_rate) for a in info.audio] == [("aac", 2, 48000)]


@pytest.mark.parametrize(
    ("kind", "stored", "shown"),
    [
        ("landscape", (1920, 1080), (1920, 1080)),
        ("portrait", (1080, 1920), (1080, 1920)),
        ("rotated", (1920, 1080), (1080, 1920)),
        ("anamorphic", (1440, 1080), (1920, 1080)),
        ("p720", (1280, 720), (1280, 720)),
        ("p540", (960, 540), (960, 540)),
        ("tiny", (320, 180), (320, 180)),
    ],
)
def test_stored_and_shown_sizes(
    clips: Clips, tool: str | None, kind: str, stored: tuple[int, int], shown: tuple[int, int]
) -> None:
    video = probe(clips(kind), tool).video
    assert video is not None
    assert (video.width, video.height) == stored
    assert video.display_size == shown


def test_a_90_degree_display_matrix_is_read(clips: Clips, tool: str | None) -> None:
    video = probe(clips("rotated"), tool).video
    assert video is not None
    assert video.rotation == 90


def test_anamorphic_pixels_are_4_3_wide(clips: Clips, tool: str | None) -> None:
    video = probe(clips("anamorphic"), tool).video
    assert video is not None
    assert video.sar == Fraction(4, 3)


@pytest.mark.parametrize(
    ("kind", "channels"),
    [("no_audio", []), ("mono", [1]), ("surround", [6]), ("multi_audio", [2, 2])],
)
def test_audio_tracks_and_channels(
    clips: Clips, tool: str | None, kind: str, channels: list[int]
) -> None:
    assert [track.channels for track in probe(clips(kind), tool).audio] == channels


def test_the_default_audio_track_is_the_main_one(clips: Clips, tool: str | None) -> None:
    info = probe(clips("multi_audio"), tool)
    assert [track.default for track in info.audio] == [False, True]
    assert info.main_audio is not None
    assert info.main_audio.index == 2
    assert probe(clips("no_audio"), tool).main_audio is None


def test_variable_frame_rate_is_noticed(clips: Clips, tool: str | None) -> None:
    info = probe(clips("vfr"), tool)
    assert info.video is not None
    assert info.video.variable_frame_rate
    assert info.video.frame_rate == Fraction(600, 29)  # 40 frames in 1.93 s
    assert info.video.nominal_frame_rate == 30  # shot at 30 fps, frames dropped later
    assert plan_ladder(info, LIMITS).frame_rate == 30


def test_10_bit_hlg_hevc_is_hdr(clips: Clips, tool: str | None) -> None:
    video = probe(clips("hdr"), tool).video
    assert video is not None
    assert (video.codec, video.pix_fmt, video.bit_depth) == ("hevc", "yuv420p10le", 10)
    assert (video.color_transfer, video.color_primaries) == ("arib-std-b67", "bt2020")
    assert video.color_space == "bt2020nc"
    assert video.is_hdr


@pytest.mark.parametrize(
    ("kind", "code", "words"),
    [
        ("empty", "ERR_NON_VIDEO", "empty"),
        ("text", "ERR_NON_VIDEO", "not a video"),
        ("audio_only", "ERR_NON_VIDEO", "only audio"),
        ("cover_art", "ERR_NON_VIDEO", "cover art"),
        ("still", "ERR_NON_VIDEO", "still image"),
        ("truncated", "ERR_MALFORMED", "cut short"),
        ("truncated_faststart", "ERR_MALFORMED", "incomplete"),
    ],
)
def test_unusable_files_are_refused_with_a_code(
    clips: Clips, tool: str | None, kind: str, code: str, words: str
) -> None:
    with pytest.raises(ProbeError) as caught:
        probe(clips(kind), tool)
    assert caught.value.code == code
    assert words in caught.value.text


@needs_ffprobe
@pytest.mark.parametrize(
    "kind", ["landscape", "rotated", "anamorphic", "surround", "multi_audio", "hdr"]
)
def test_pyav_sees_what_ffprobe_sees(clips: Clips, kind: str) -> None:
    by_ffprobe, by_pyav = probe(clips(kind), FFPROBE), probe(clips(kind), None)
    assert by_pyav.video == by_ffprobe.video
    assert by_pyav.audio == by_ffprobe.audio
    assert (by_pyav.format_name, by_pyav.size) == (by_ffprobe.format_name, by_ffprobe.size)
    assert by_pyav.duration == pytest.approx(by_ffprobe.duration, abs=0.01)


@needs_ffprobe
def test_a_slow_ffprobe_is_stopped(clips: Clips) -> None:
    with pytest.raises(ProbeError) as caught:
        probe(clips("landscape"), FFPROBE, timeout=0.0001)
    assert caught.value.code == "ERR_TIMEOUT"


# --- ffprobe JSON, as different builds print it ------------------------------------------------


def stream(**fields: Any) -> dict[str, Any]:
    """A 1920x1080 H.264 video stream as ffprobe prints it, with `fields` replaced."""
    base: dict[str, Any] = {
        "index": 0,
        "codec_name": "h264",
        "codec_type": "video",
        "width": 1920,
        "height": 1080,
        "sample_aspect_ratio": "1:1",
        "r_frame_rate": "30/1",
        "avg_frame_rate": "30/1",
        "pix_fmt": "yuv420p",
        "bits_per_raw_sample": "8",
        "duration": "12.000000",
        "disposition": {"default": 1, "attached_pic": 0},
    }
    return {**base, **fields}


def parsed(*streams: dict[str, Any], duration: str | None = "12.000000") -> SourceInfo:
    fmt = {"format_name": "mov,mp4,m4a,3gp,3g2,mj2", "duration": duration, "bit_rate": "900000"}
    return parse_ffprobe({"format": fmt, "streams": list(streams)}, size=1_350_000)


def parsed_video(**fields: Any) -> VideoStream:
    video = parsed(stream(**fields)).video
    assert video is not None
    return video


def test_a_plain_stream_is_read_field_by_field() -> None:
    info = parsed(stream())
    assert (info.duration, info.size, info.bit_rate) == (12.0, 1_350_000, 900_000)
    assert info.video is not None
    assert (info.video.index, info.video.display_size, info.video.frame_rate) == (
        0,
        (1920, 1080),
        Fraction(30),
    )
    assert info.audio == ()


@pytest.mark.parametrize(
    ("fields", "rotation"),
    [
        # ffprobe 5+: the display matrix in side data, counter-clockwise degrees
        ({"side_data_list": [{"side_data_type": "Display Matrix", "rotation": 90}]}, 90),
        ({"side_data_list": [{"side_data_type": "Display Matrix", "rotation": -90}]}, 270),
        ({"side_data_list": [{"side_data_type": "Display Matrix", "rotation": -180}]}, 180),
        # ffprobe 4 and older: the clockwise `rotate` tag
        ({"tags": {"rotate": "90"}}, 270),
        ({"tags": {"rotate": "180"}}, 180),
        ({}, 0),
    ],
)
def test_rotation_from_either_place(fields: dict[str, Any], rotation: int) -> None:
    video = parsed_video(**fields)
    assert video.rotation == rotation
    assert video.display_size == ((1080, 1920) if rotation % 180 else (1920, 1080))


@pytest.mark.parametrize(
    ("sar", "expected"), [("1:1", 1), ("0:1", 1), (None, 1), ("N/A", 1), ("4:3", Fraction(4, 3))]
)
def test_sample_aspect_ratio(sar: str | None, expected: Fraction) -> None:
    assert parsed_video(sample_aspect_ratio=sar).sar == expected


@pytest.mark.parametrize(
    ("real", "average", "rate", "variable"),
    [
        ("30/1", "30/1", Fraction(30), False),
        ("30000/1001", "30000/1001", Fraction(30000, 1001), False),
        ("30/1", "2990/100", Fraction(299, 10), False),  # 0.3 % apart: constant
        ("30/1", "2950/100", Fraction(59, 2), True),  # 1.7 % apart: variable
        ("30/1", "0/0", Fraction(30), False),  # no average: the real base rate
        ("0/0", "0/0", None, False),  # unknown
    ],
)
def test_frame_rate_and_vfr(real: str, average: str, rate: Fraction | None, variable: bool) -> None:
    video = parsed_video(r_frame_rate=real, avg_frame_rate=average)
    assert (video.frame_rate, video.variable_frame_rate) == (rate, variable)


@pytest.mark.parametrize(
    ("fields", "depth"),
    [
        ({"bits_per_raw_sample": "10", "pix_fmt": "yuv420p10le"}, 10),
        ({"bits_per_raw_sample": None, "pix_fmt": "yuv420p10le"}, 10),  # HEVC: only the pix_fmt
        ({"bits_per_raw_sample": None, "pix_fmt": "p010le"}, 10),
        ({"bits_per_raw_sample": None, "pix_fmt": "yuv422p12le"}, 12),
        ({"bits_per_raw_sample": None, "pix_fmt": "a-format-from-the-future"}, 8),
    ],
)
def test_bit_depth(fields: dict[str, Any], depth: int) -> None:
    assert parsed_video(**fields).bit_depth == depth


def test_duration_falls_back_to_the_video_stream() -> None:
    assert parsed(stream(duration="7.5"), duration=None).duration == 7.5


@pytest.mark.parametrize("duration", [None, "N/A", "0.000000"])
def test_an_unknown_or_zero_duration_is_malformed(duration: str | None) -> None:
    with pytest.raises(ProbeError) as caught:
        parsed(stream(duration=duration), duration=duration)
    assert caught.value.code == "ERR_MALFORMED"


def test_a_video_stream_without_a_size_is_malformed() -> None:
    with pytest.raises(ProbeError) as caught:
        parsed(stream(width=0, height=0))
    assert caught.value.code == "ERR_MALFORMED"


def test_cover_art_next_to_a_real_video_is_ignored() -> None:
    cover = stream(index=0, codec_name="mjpeg", disposition={"default": 0, "attached_pic": 1})
    info = parsed(cover, stream(index=1))
    assert info.video is not None
    assert (info.video.index, info.video.codec) == (1, "h264")


def test_an_index_describing_more_bytes_than_the_file_holds_is_malformed() -> None:
    # 12 s at 1.8 Mbit/s is 2.7 MB of media; the file holds 1.35 MB
    with pytest.raises(ProbeError) as caught:
        parsed(stream(bit_rate="1800000"))
    assert caught.value.code == "ERR_MALFORMED"
    assert parsed(stream(bit_rate="900000")).video is not None


@pytest.mark.parametrize(
    ("head", "name"),
    [
        (b"\x00\x00\x00\x20ftypisom", "an MP4/QuickTime file"),
        (b"\x00\x00\x00\x08wide\x00\x00", "an MP4/QuickTime file"),
        (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81", "a Matroska/WebM file"),
        (b"RIFF\x00\x00\x00\x00AVI LIST", "an AVI file"),
        (b"\x47" + b"\x00" * 187 + b"\x47\x00", "an MPEG transport stream"),
        (b"This is a shopping list, not a video.", None),
        (b"", None),
    ],
)
def test_container_signatures(head: bytes, name: str | None) -> None:
    assert container_name(head) == name


def test_probing_a_missing_file_is_an_os_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        probe(tmp_path / "gone.mp4", FFPROBE)
