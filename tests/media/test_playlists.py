"""HLS playlists: media playlist parsing, measured bandwidths, the master, capping, codecs, signing."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import m3u8
import pytest

from reelout.media.playlists import (
    Segment,
    Variant,
    build_master,
    cap_master,
    codecs_string,
    parse_media_playlist,
    rewrite_media_playlist,
)

# As ffmpeg 5.1 writes a VOD fMP4 rung: 4 s segments and a 1.5 s tail.
MEDIA = """#EXTM3U
#EXT-X-VERSION:7
#EXT-X-TARGETDURATION:4
#EXT-X-MEDIA-SEQUENCE:1
#EXT-X-PLAYLIST-TYPE:VOD
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MAP:URI="init.mp4"
#EXTINF:4.000000,
seg_00001.m4s
#EXTINF:4.000000,
seg_00002.m4s
#EXTINF:4.000000,
seg_00003.m4s
#EXTINF:1.500000,
seg_00004.m4s
#EXT-X-ENDLIST
"""
SIZES = {
    "init.mp4": 1_357,
    "seg_00001.m4s": 500_000,  # 1.0 Mbit/s
    "seg_00002.m4s": 700_000,  # 1.4 Mbit/s
    "seg_00003.m4s": 600_000,  # 1.2 Mbit/s
    "seg_00004.m4s": 400_000,  # 2.13 Mbit/s alone, but only 1.5 s: measured with seg 3
}
CODECS = "avc1.64001f,mp4a.40.2"
LANDSCAPE = [(426, 240, 300_000), (640, 360, 700_000), (854, 480, 1_400_000)]
LANDSCAPE += [(1280, 720, 2_800_000), (1920, 1080, 5_000_000)]


def variant(width: int, height: int, bps: int, frame_rate: float = 30.0) -> Variant:
    """A rung with one 4 s segment of `bps` bits/s."""
    name = f"{min(width, height)}p"
    segment = Segment(f"{name}/seg_00001.m4s", 4.0, bps // 2)
    return Variant(f"{name}/index.m3u8", width, height, frame_rate, CODECS, (segment,), 900)


def ladder(sizes: list[tuple[int, int, int]]) -> list[Variant]:
    return [variant(width, height, bps) for width, height, bps in sizes]


def portrait(sizes: list[tuple[int, int, int]]) -> list[Variant]:
    return [variant(height, width, bps) for width, height, bps in sizes]


def listed(master: str) -> list[str]:
    return [line for line in master.splitlines() if line and not line.startswith("#")]


# --- media playlists -------------------------------------------------------------------------


def test_parse_media_playlist() -> None:
    playlist = parse_media_playlist(MEDIA, SIZES)
    assert playlist.version == 7
    assert playlist.target_duration == 4
    assert playlist.media_sequence == 1
    assert playlist.playlist_type == "vod"
    assert playlist.init_uri == "init.mp4"
    assert playlist.endlist
    assert playlist.independent_segments
    assert [s.uri for s in playlist.segments] == [f"seg_0000{i}.m4s" for i in range(1, 5)]
    assert [s.duration for s in playlist.segments] == [4.0, 4.0, 4.0, 1.5]
    assert [s.size for s in playlist.segments] == [500_000, 700_000, 600_000, 400_000]
    assert playlist.duration == 13.5


def test_parse_media_playlist_without_map_or_endlist() -> None:
    text = "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXTINF:4.0,\na.m4s\n"
    playlist = parse_media_playlist(text, {"a.m4s": 10})
    assert playlist.init_uri is None
    assert not playlist.endlist
    assert not playlist.independent_segments
    empty = parse_media_playlist("#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-ENDLIST\n", {})
    assert empty.segments == ()


def test_parse_media_playlist_rejects_missing_size_and_masters() -> None:
    with pytest.raises(ValueError, match="seg_00004"):
        parse_media_playlist(MEDIA, {k: v for k, v in SIZES.items() if k != "seg_00004.m4s"})
    with pytest.raises(ValueError, match="master"):
        parse_media_playlist(build_master(ladder(LANDSCAPE)), SIZES)


# --- bandwidth -------------------------------------------------------------------------------


def rung(segments: tuple[Segment, ...]) -> Variant:
    return Variant("720p/index.m3u8", 1280, 720, 30.0, CODECS, segments, 1_357)


def test_peak_measures_short_tail_with_its_neighbour() -> None:
    measured = rung(parse_media_playlist(MEDIA, SIZES).segments)
    # Target 4 s: runs of 2..6 s. Singles at 4 s; the 1.5 s tail only with segment 3 (5.5 s).
    assert measured.peak_bandwidth == math.ceil(Fraction(8 * 1_000_000) / Fraction("5.5"))
    assert measured.peak_bandwidth == 1_454_546
    assert measured.average_bandwidth == math.ceil(Fraction(8 * 2_200_000) / Fraction("13.5"))
    assert measured.average_bandwidth == 1_303_704


def test_peak_is_largest_full_segment_without_tail() -> None:
    segments = (Segment("a", 4.0, 500_000), Segment("b", 4.0, 700_001), Segment("c", 4.0, 1))
    assert rung(segments).peak_bandwidth == 1_400_002
    assert rung(segments).average_bandwidth == math.ceil(Fraction(8 * 1_200_002, 12))


def test_short_tail_counts_alone_when_it_spans_half_a_target() -> None:
    segments = (Segment("a", 4.0, 500_000), Segment("b", 2.0, 500_000))
    assert rung(segments).peak_bandwidth == 2_000_000


def test_init_segment_is_not_counted() -> None:
    lean = Variant("x", 640, 360, 30.0, CODECS, (Segment("a", 4.0, 500_000),), 0)
    heavy = Variant("x", 640, 360, 30.0, CODECS, (Segment("a", 4.0, 500_000),), 10**6)
    assert lean.peak_bandwidth == heavy.peak_bandwidth == 1_000_000
    assert lean.average_bandwidth == heavy.average_bandwidth == 1_000_000


@pytest.mark.parametrize("seconds", [4.1, 0.7])
def test_bandwidth_is_exact_not_float(seconds: float) -> None:
    # 8 * 512_500 / 4.1 is 1000000.0000000001 in floats; the EXTINF value is exact decimal.
    segment = Segment("a", seconds, round(seconds * 1_000_000 / 8))
    assert rung((segment,)).peak_bandwidth == 1_000_000
    assert rung((segment,)).average_bandwidth == 1_000_000


def test_variant_rejects_unusable_values() -> None:
    with pytest.raises(ValueError, match="no segments"):
        rung(())
    with pytest.raises(ValueError, match="duration"):
        rung((Segment("a", 0.0, 1),))
    with pytest.raises(ValueError, match="CODECS"):
        Variant("x", 2, 2, 30.0, 'avc1"', (Segment("a", 4.0, 1),), 0)


# --- master ----------------------------------------------------------------------------------


def test_master_text() -> None:
    master = build_master([variant(426, 240, 300_000), variant(640, 360, 700_000)])
    assert master == (
        "#EXTM3U\n"
        "#EXT-X-VERSION:7\n"
        "#EXT-X-INDEPENDENT-SEGMENTS\n"
        "#EXT-X-STREAM-INF:BANDWIDTH=700000,AVERAGE-BANDWIDTH=700000,"
        'CODECS="avc1.64001f,mp4a.40.2",RESOLUTION=640x360,FRAME-RATE=30.000\n'
        "360p/index.m3u8\n"
        "#EXT-X-STREAM-INF:BANDWIDTH=300000,AVERAGE-BANDWIDTH=300000,"
        'CODECS="avc1.64001f,mp4a.40.2",RESOLUTION=426x240,FRAME-RATE=30.000\n'
        "240p/index.m3u8\n"
    )


def test_nearest_to_one_megabit_first_then_ascending() -> None:
    shuffled = ladder(LANDSCAPE)[::-1]
    # 700k is 300k from 1 Mbit/s, 1.4M is 400k away.
    assert listed(build_master(shuffled)) == [
        "360p/index.m3u8",
        "240p/index.m3u8",
        "480p/index.m3u8",
        "720p/index.m3u8",
        "1080p/index.m3u8",
    ]


def test_first_listed_tie_goes_to_the_lower_rung_and_target_is_a_parameter() -> None:
    variants = [variant(1280, 720, 1_200_000), variant(854, 480, 800_000)]
    assert listed(build_master(variants))[0] == "480p/index.m3u8"
    variants = ladder(LANDSCAPE)
    assert listed(build_master(variants, first_near_bps=3_000_000))[:2] == [
        "720p/index.m3u8",
        "240p/index.m3u8",
    ]


@pytest.mark.parametrize(
    ("rate", "written"),
    [
        (30.0, "30.000"),
        (30000 / 1001, "29.970"),
        (24000 / 1001, "23.976"),
        (60000 / 1001, "59.940"),
        (25.0, "25.000"),
        (24.0, "24.000"),
    ],
)
def test_frame_rate_has_three_decimals(rate: float, written: str) -> None:
    master = build_master([variant(1280, 720, 2_800_000, frame_rate=rate)])
    assert f",FRAME-RATE={written}\n" in master


def test_master_round_trips_through_m3u8() -> None:
    variants = ladder(LANDSCAPE)
    parsed = m3u8.loads(build_master(variants))
    assert parsed.is_variant
    assert parsed.version == 7
    assert parsed.is_independent_segments
    by_uri = {playlist.uri: playlist.stream_info for playlist in parsed.playlists}
    assert len(by_uri) == len(variants)
    for declared in variants:
        info = by_uri[declared.uri]
        assert info.bandwidth == declared.peak_bandwidth
        assert info.average_bandwidth == declared.average_bandwidth
        assert info.codecs == CODECS
        assert info.resolution == (declared.width, declared.height)
        assert info.frame_rate == 30.0


def test_master_needs_a_variant() -> None:
    with pytest.raises(ValueError, match="at least one"):
        build_master([])


# --- capping ---------------------------------------------------------------------------------


def test_cap_landscape() -> None:
    capped = cap_master(build_master(ladder(LANDSCAPE)), 720)
    assert listed(capped) == [
        "360p/index.m3u8",
        "240p/index.m3u8",
        "480p/index.m3u8",
        "720p/index.m3u8",
    ]
    assert capped.startswith("#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n")


def test_cap_portrait_uses_the_short_side() -> None:
    capped = cap_master(build_master(portrait(LANDSCAPE)), 720)
    assert "RESOLUTION=720x1280" in capped
    assert "RESOLUTION=1080x1920" not in capped
    assert len(m3u8.loads(capped).playlists) == 4


def test_cap_keeps_whole_master_when_everything_fits() -> None:
    master = build_master(ladder(LANDSCAPE))
    assert cap_master(master, 1080) == master
    assert cap_master(master, 4320) == master


@pytest.mark.parametrize("make", [ladder, portrait])
def test_cap_below_every_rung_keeps_the_smallest(make: object) -> None:
    variants = ladder(LANDSCAPE) if make is ladder else portrait(LANDSCAPE)
    capped = cap_master(build_master(variants), 144)
    assert listed(capped) == ["240p/index.m3u8"]


def test_cap_reapplies_first_listed_rule() -> None:
    sizes = [(426, 240, 300_000), (640, 360, 600_000), (854, 480, 800_000), (1280, 720, 1_100_000)]
    master = build_master(ladder(sizes))
    assert listed(master)[0] == "720p/index.m3u8"
    assert listed(cap_master(master, 480)) == [
        "480p/index.m3u8",
        "240p/index.m3u8",
        "360p/index.m3u8",
    ]


def test_cap_keeps_signed_uris_verbatim() -> None:
    token = "token=eyJhbGciOi.J9x-_y&exp=1767225600"
    master = build_master(portrait(LANDSCAPE)).replace(".m3u8\n", f".m3u8?{token}\n")
    capped = cap_master(master, 480)
    assert listed(capped) == [
        f"360p/index.m3u8?{token}",
        f"240p/index.m3u8?{token}",
        f"480p/index.m3u8?{token}",
    ]
    parsed = m3u8.loads(capped)
    assert [p.stream_info.resolution for p in parsed.playlists] == [
        (360, 640),
        (240, 426),
        (480, 854),
    ]


def test_cap_rejects_what_it_cannot_read() -> None:
    with pytest.raises(ValueError, match="no EXT-X-STREAM-INF"):
        cap_master(MEDIA, 720)
    with pytest.raises(ValueError, match="RESOLUTION"):
        cap_master("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\na.m3u8\n", 720)
    with pytest.raises(ValueError, match="positive"):
        cap_master(build_master(ladder(LANDSCAPE)), 0)


# --- codecs ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("codec", "profile", "level", "audio", "expected"),
    [
        ("h264", "High", 31, True, "avc1.64001f,mp4a.40.2"),
        ("h264", "High", 40, True, "avc1.640028,mp4a.40.2"),
        ("h264", "High", 51, False, "avc1.640033"),
        ("h264", "high", 21, True, "avc1.640015,mp4a.40.2"),
        ("h264", "Main", 30, True, "avc1.4d401e,mp4a.40.2"),
        ("h264", "Constrained Baseline", 21, False, "avc1.42c015"),
        ("h264", "Baseline", 30, False, "avc1.42001e"),
    ],
)
def test_codecs_string(codec: str, profile: str, level: int, audio: bool, expected: str) -> None:
    assert codecs_string(codec, profile, level, audio) == expected


@pytest.mark.parametrize(
    ("codec", "profile", "level"),
    [
        ("hevc", "Main", 120),
        ("vp9", "Profile 0", 31),
        ("h264", None, 31),
        ("h264", "High 10", 31),
        ("h264", "High 4:4:4 Predictive", 31),
        ("h264", "High", None),
        ("h264", "High", 33),
        ("h264", "High", -99),
    ],
)
def test_codecs_string_rejects_unknown(codec: str, profile: str | None, level: int | None) -> None:
    with pytest.raises(ValueError, match=r"codec|profile|level"):
        codecs_string(codec, profile, level, True)


# --- signing ---------------------------------------------------------------------------------


def test_rewrite_signs_segments_and_init() -> None:
    signed = rewrite_media_playlist(MEDIA, "token=abc&exp=1")
    original, parsed = m3u8.loads(MEDIA), m3u8.loads(signed)
    assert len(parsed.segments) == len(original.segments) == 4
    assert [s.duration for s in parsed.segments] == [s.duration for s in original.segments]
    assert [s.uri for s in parsed.segments] == [
        f"{s.uri}?token=abc&exp=1" for s in original.segments
    ]
    assert parsed.segment_map[0].uri == "init.mp4?token=abc&exp=1"
    tags = [line for line in MEDIA.splitlines() if line.startswith("#") and "MAP" not in line]
    assert [
        line for line in signed.splitlines() if line.startswith("#") and "MAP" not in line
    ] == tags


def test_rewrite_extends_an_existing_query_and_keeps_line_endings() -> None:
    text = '#EXTM3U\r\n#EXT-X-MAP:URI="init.mp4?v=2"\r\n#EXTINF:4.0,\r\nseg_1.m4s?v=2\r\n'
    signed = rewrite_media_playlist(text, "?t=1")
    assert signed == (
        '#EXTM3U\r\n#EXT-X-MAP:URI="init.mp4?v=2&t=1"\r\n#EXTINF:4.0,\r\nseg_1.m4s?v=2&t=1\r\n'
    )


def test_rewrite_rejects_unsafe_query_and_ignores_empty() -> None:
    assert rewrite_media_playlist(MEDIA, "") == MEDIA
    for query in ['t="x"', "t=a b", "t=1\n#EXT-X-ENDLIST"]:
        with pytest.raises(ValueError, match="query"):
            rewrite_media_playlist(MEDIA, query)


# --- a real ladder ---------------------------------------------------------------------------

needs_ffmpeg = pytest.mark.skipif(
    not (shutil.which("ffmpeg") and shutil.which("ffprobe")), reason="needs ffmpeg and ffprobe"
)

LADDER_COMMAND = [
    "ffmpeg", "-v", "error", "-nostdin",
    "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30:duration=5",
    "-f", "lavfi", "-i", "sine=frequency=440:duration=5",
    "-filter_complex", "[0:v]split=2[a][b];[a]scale=426:240[v0];[b]scale=640:360[v1]",
    "-map", "[v0]", "-map", "1:a", "-map", "[v1]", "-map", "1:a",
    "-c:v", "libx264", "-preset", "veryfast", "-profile:v", "high",
    "-g", "60", "-keyint_min", "60", "-sc_threshold", "0", "-c:a", "aac", "-b:a", "64k",
    "-f", "hls", "-hls_time", "2", "-hls_playlist_type", "vod",
    "-hls_flags", "independent_segments", "-hls_segment_type", "fmp4",
    "-hls_fmp4_init_filename", "init.mp4", "-hls_segment_filename", "%v/seg_%05d.m4s",
    "-start_number", "1", "-master_pl_name", "master.m3u8",
    "-var_stream_map", "v:0,a:0,name:240p v:1,a:1,name:360p", "%v/index.m3u8",
]  # fmt: skip


def probe_streams(path: Path) -> list[dict[str, object]]:
    command = ["ffprobe", "-v", "error", "-show_streams", "-of", "json", str(path)]
    reply = subprocess.run(command, capture_output=True, check=True, text=True)
    streams: list[dict[str, object]] = json.loads(reply.stdout)["streams"]
    return streams


def avcc_codec(init: bytes) -> str:
    """avc1.PPCCLL straight from the avcC box: profile, constraint byte, level of the SPS."""
    at = init.index(b"avcC") + 4  # configurationVersion, then the three bytes
    profile, constraints, level = init[at + 1 : at + 4]
    return f"avc1.{profile:02x}{constraints:02x}{level:02x}"


def probed_codecs(rung_dir: Path, init_uri: str, first: Segment, out: Path) -> str:
    out.write_bytes((rung_dir / init_uri).read_bytes() + (rung_dir / first.uri).read_bytes())
    streams = probe_streams(out)
    video = next(s for s in streams if s["codec_type"] == "video")
    audio = [s for s in streams if s["codec_name"] == "aac" and s["profile"] == "LC"]
    level = video["level"]
    assert isinstance(level, int)
    return codecs_string(str(video["codec_name"]), str(video["profile"]), level, bool(audio))


def measured_variant(root: Path, name: str, width: int, height: int) -> Variant:
    rung_dir = root / name
    sizes = {path.name: path.stat().st_size for path in rung_dir.iterdir()}
    playlist = parse_media_playlist((rung_dir / "index.m3u8").read_text(), sizes)
    assert playlist.endlist and playlist.independent_segments and playlist.init_uri
    codecs = probed_codecs(rung_dir, playlist.init_uri, playlist.segments[0], root / f"{name}.mp4")
    assert codecs == avcc_codec((rung_dir / playlist.init_uri).read_bytes()) + ",mp4a.40.2"
    return Variant(
        uri=f"{name}/index.m3u8",
        width=width,
        height=height,
        frame_rate=30.0,
        codecs=codecs,
        segments=playlist.segments,
        init_size=sizes[playlist.init_uri],
    )


def direct_peak(root: Path, name: str) -> float:
    """max over segments of 8 x bytes on disk / EXTINF, independent of the module."""
    parsed = m3u8.loads((root / name / "index.m3u8").read_text())
    return max(
        8 * (root / name / s.uri).stat().st_size / float(s.duration) for s in parsed.segments
    )


@needs_ffmpeg
def test_real_ladder(tmp_path: Path) -> None:
    subprocess.run(LADDER_COMMAND, cwd=tmp_path, check=True, timeout=30)
    variants = [
        measured_variant(tmp_path, "240p", 426, 240),
        measured_variant(tmp_path, "360p", 640, 360),
    ]
    assert all(v.codecs.startswith("avc1.6400") for v in variants)  # x264 High
    parsed = m3u8.loads(build_master(variants))
    nearest = min(variants, key=lambda v: abs(direct_peak(tmp_path, v.uri[:4]) - 1_000_000))
    assert parsed.playlists[0].uri == nearest.uri
    assert {p.uri for p in parsed.playlists} == {v.uri for v in variants}
    for playlist in parsed.playlists:
        name = playlist.uri.split("/")[0]
        declared = playlist.stream_info.bandwidth
        assert abs(declared - direct_peak(tmp_path, name)) <= 0.1 * declared
        assert 0 < playlist.stream_info.average_bandwidth <= declared
        assert playlist.stream_info.frame_rate == 30.0


@needs_ffmpeg
@pytest.mark.parametrize(
    ("preset", "profile", "ffprobe_profile"),
    [
        ("veryfast", "high", "High"),
        ("veryfast", "main", "Main"),
        ("ultrafast", "baseline", "Constrained Baseline"),
    ],
)
def test_constraint_byte_matches_x264(
    tmp_path: Path, preset: str, profile: str, ffprobe_profile: str
) -> None:
    command = [
        "ffmpeg", "-v", "error", "-nostdin", "-f", "lavfi",
        "-i", "testsrc2=size=320x180:rate=30:duration=1",
        "-c:v", "libx264", "-preset", preset, "-profile:v", profile,
        "-f", "hls", "-hls_segment_type", "fmp4", "-hls_playlist_type", "vod",
        "-hls_fmp4_init_filename", "init.mp4", "-hls_segment_filename", "seg_%d.m4s",
        "index.m3u8",
    ]  # fmt: skip
    subprocess.run(command, cwd=tmp_path, check=True, timeout=30)
    init = (tmp_path / "init.mp4").read_bytes()
    sizes = {path.name: path.stat().st_size for path in tmp_path.iterdir()}
    playlist = parse_media_playlist((tmp_path / "index.m3u8").read_text(), sizes)
    codecs = probed_codecs(tmp_path, "init.mp4", playlist.segments[0], tmp_path / "probe.mp4")
    video = probe_streams(tmp_path / "probe.mp4")[0]
    assert video["profile"] == ffprobe_profile
    assert codecs == avcc_codec(init)
