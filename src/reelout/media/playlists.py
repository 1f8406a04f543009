"""HLS playlist text: reading ffmpeg's fMP4 media playlists, writing and capping the master.

Pure: text and byte counts in, text or values out; the caller reads the files and stats sizes.

Bandwidths follow RFC 8216 section 4.1 and count media segment bytes only (video and muxed
audio, container included). The init segment (EXT-X-MAP) is fetched once per variant, not
every segment duration, so it is counted in neither BANDWIDTH nor AVERAGE-BANDWIDTH
(`Variant.init_size` is carried for reporting only).

The master is written by hand rather than with `m3u8`'s dumper: m3u8 6.0 does emit
AVERAGE-BANDWIDTH and FRAME-RATE, but formats FRAME-RATE with `%g`, so 30 becomes `30` and
29.970 becomes `29.97`, where we want the three decimals RFC 8216 rounds to (`30.000`,
`29.970`). `m3u8` is still used to parse media playlists, and tests parse our master with it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import TypeVar

import m3u8

MASTER_VERSION = 7
"""EXT-X-VERSION of the master. Its own tags need no minimum version (only INSTREAM-ID=SERVICE
would need 7); the fMP4 media playlists need >= 6 for EXT-X-MAP and ffmpeg writes 7 in them,
so the master declares the same version as the playlists it points to."""

_STREAM_INF = "#EXT-X-STREAM-INF:"
_ATTRIBUTE = re.compile(r'([A-Z0-9-]+)=("[^"]*"|[^,]*)')
_MAP_URI = re.compile(r'(URI=")([^"]*)(")')

_Item = TypeVar("_Item")


@dataclass(frozen=True)
class Segment:
    """One media segment: its URI as written in the playlist, EXTINF seconds and byte size."""

    uri: str
    duration: float
    size: int


@dataclass(frozen=True)
class MediaPlaylist:
    """What a rung's media playlist declares, with the byte size of every segment."""

    version: int | None
    target_duration: int
    media_sequence: int
    playlist_type: str | None  # "vod", "event" or None (lower case, as m3u8 reports it)
    init_uri: str | None  # EXT-X-MAP URI; None for a playlist without one
    segments: tuple[Segment, ...]
    endlist: bool
    independent_segments: bool

    @property
    def duration(self) -> float:
        return sum(segment.duration for segment in self.segments)


@dataclass(frozen=True)
class Variant:
    """One rung as the master lists it, measured from the bytes written."""

    uri: str  # relative to the master, e.g. "720p/index.m3u8"
    width: int
    height: int
    frame_rate: float
    codecs: str  # RFC 6381, e.g. "avc1.64001f,mp4a.40.2"
    segments: tuple[Segment, ...]
    init_size: int  # bytes of the EXT-X-MAP init segment; not part of either bandwidth

    def __post_init__(self) -> None:
        if not self.segments:
            raise ValueError(f"variant {self.uri!r} has no segments")
        if any(segment.duration <= 0 for segment in self.segments):
            raise ValueError(f"variant {self.uri!r} has a segment without duration")
        if min(self.width, self.height) <= 0 or self.frame_rate <= 0:
            raise ValueError(f"variant {self.uri!r} has no size or no frame rate")
        if not self.codecs or '"' in self.codecs or any(c.isspace() for c in self.uri):
            raise ValueError(f"variant {self.uri!r} has an unwritable URI or CODECS")

    @property
    def short_side(self) -> int:
        return min(self.width, self.height)

    @property
    def peak_bandwidth(self) -> int:
        """RFC 8216 peak segment bit rate, bits/s rounded up.

        The largest rate of any run of consecutive segments lasting 0.5 to 1.5 target
        durations (target = ceil of the longest segment). With full-length segments this is
        the largest single-segment rate; a short last segment is measured together with its
        neighbour, so a lone keyframe in a 0.2 s tail cannot inflate BANDWIDTH.
        """
        return math.ceil(_peak_rate(self.segments))

    @property
    def average_bandwidth(self) -> int:
        """8 x all segment bytes / total duration, bits/s rounded up."""
        return math.ceil(_rate(self.segments))


def parse_media_playlist(text: str, sizes: Mapping[str, int]) -> MediaPlaylist:
    """Parse a media playlist; `sizes` maps each segment URI as written to its byte size.

    Raises ValueError for a master playlist or a segment missing from `sizes`; a playlist
    without segments parses (to no segments) and is left for the caller to reject.
    """
    parsed = m3u8.loads(text)
    if parsed.is_variant:
        raise ValueError("expected a media playlist, got a master playlist")
    segments = tuple(_segment(item, sizes) for item in parsed.segments)
    return MediaPlaylist(
        version=None if parsed.version is None else int(parsed.version),
        target_duration=int(parsed.target_duration),
        media_sequence=int(parsed.media_sequence or 0),
        playlist_type=None if parsed.playlist_type is None else str(parsed.playlist_type),
        init_uri=_init_uri(parsed),
        segments=segments,
        endlist=bool(parsed.is_endlist),
        independent_segments=bool(parsed.is_independent_segments),
    )


def build_master(variants: Sequence[Variant], *, first_near_bps: int = 1_000_000) -> str:
    """The master playlist text: the variant nearest `first_near_bps` first, then ascending."""
    if not variants:
        raise ValueError("a master playlist needs at least one variant")
    ordered = sorted(variants, key=lambda v: (v.peak_bandwidth, v.short_side, v.uri))
    listed = _listing_order(ordered, lambda v: v.peak_bandwidth, first_near_bps)
    lines = [*_master_head(), *(line for v in listed for line in _stream_inf(v))]
    return "\n".join(lines) + "\n"


def cap_master(master_text: str, max_height: int, *, first_near_bps: int = 1_000_000) -> str:
    """The master with only the variants whose short side is <= `max_height`.

    "Height" is the short side, so a 720x1280 portrait rung counts as 720p, like its name.
    When no variant fits, the one with the smallest short side is kept: never an empty master.
    URI lines (query strings included) and all other lines are kept verbatim.
    """
    if max_height <= 0:
        raise ValueError(f"max_height must be positive, got {max_height}")
    head, blocks = _split_master(master_text)
    kept = [block for block in blocks if block.short_side <= max_height]
    if not kept:
        kept = [min(blocks, key=lambda b: (b.short_side, b.bandwidth))]
    ordered = sorted(kept, key=lambda b: b.bandwidth)
    listed = _listing_order(ordered, lambda b: b.bandwidth, first_near_bps)
    lines = [*head, *(line for block in listed for line in (block.tag, block.uri))]
    return "\n".join(lines) + "\n"


def codecs_string(video_codec: str, profile: str | None, level: int | None, has_audio: bool) -> str:
    """RFC 6381 CODECS for an H.264 (+ AAC-LC) rendition, from ffprobe's codec/profile/level.

    avc1.PPCCLL: profile_idc, the SPS constraint-flag byte, level_idc. ffprobe names only the
    profile, so CC is the byte x264 writes for it: 00 for High, 40 (constraint_set1) for Main,
    C0 (constraint_set0+1) for Constrained Baseline, 00 for plain Baseline.
    """
    if video_codec != "h264":
        raise ValueError(f"no codec string for video codec {video_codec!r}")
    profile_idc, constraints = _avc_profile(profile)
    codecs = f"avc1.{profile_idc:02x}{constraints:02x}{_avc_level(level):02x}"
    return f"{codecs},mp4a.40.2" if has_audio else codecs


def rewrite_media_playlist(text: str, query: str) -> str:
    """Append `query` to every segment URI and the EXT-X-MAP URI; tags are left as they are."""
    query = query.removeprefix("?")
    if any(char.isspace() or char in '"#' for char in query):
        raise ValueError(f"query {query!r} cannot go into a playlist URI")
    if not query:
        return text
    return "".join(_signed_line(line, query) for line in text.splitlines(keepends=True))


# --- media playlists -------------------------------------------------------------------------


def _segment(item: m3u8.Segment, sizes: Mapping[str, int]) -> Segment:
    uri = str(item.uri)
    if uri not in sizes:
        raise ValueError(f"no size for segment {uri!r}")
    return Segment(uri=uri, duration=float(item.duration), size=int(sizes[uri]))


def _init_uri(parsed: m3u8.M3U8) -> str | None:
    uris = {str(section.uri) for section in parsed.segment_map or ()}
    if len(uris) > 1:
        raise ValueError(f"media playlist has several init segments: {sorted(uris)}")
    return uris.pop() if uris else None


def _signed_line(line: str, query: str) -> str:
    body = line.rstrip("\r\n")
    ending = line[len(body) :]
    if body.startswith("#EXT-X-MAP:"):
        body = _MAP_URI.sub(lambda m: m[1] + _with_query(m[2], query) + m[3], body, count=1)
    elif body.strip() and not body.startswith("#"):
        body = _with_query(body, query)
    return body + ending


def _with_query(uri: str, query: str) -> str:
    return f"{uri}{'&' if '?' in uri else '?'}{query}"


# --- bandwidth -------------------------------------------------------------------------------


def _seconds(duration: float) -> Fraction:
    """The EXTINF value as written (repr round-trips it), so rates are exact, not float."""
    return Fraction(repr(duration))


def _rate(segments: Sequence[Segment]) -> Fraction:
    total_bytes = sum(segment.size for segment in segments)
    seconds = sum((_seconds(segment.duration) for segment in segments), Fraction(0))
    return Fraction(8 * total_bytes) / seconds


def _peak_rate(segments: Sequence[Segment]) -> Fraction:
    target = math.ceil(max(_seconds(segment.duration) for segment in segments))
    shortest, longest = Fraction(target, 2), Fraction(3 * target, 2)
    rates = [_rate(segments[start:stop]) for start, stop in _runs(segments, shortest, longest)]
    return max(rates, default=_rate(segments))


def _runs(
    segments: Sequence[Segment], shortest: Fraction, longest: Fraction
) -> list[tuple[int, int]]:
    """(start, stop) of every run of consecutive segments lasting shortest..longest seconds."""
    runs = []
    for start in range(len(segments)):
        seconds = Fraction(0)
        for stop in range(start + 1, len(segments) + 1):
            seconds += _seconds(segments[stop - 1].duration)
            if seconds > longest:
                break
            if seconds >= shortest:
                runs.append((start, stop))
    return runs


# --- master ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Block:
    """One EXT-X-STREAM-INF line and its URI line, as read from a master."""

    tag: str
    uri: str
    bandwidth: int
    short_side: int


def _master_head() -> list[str]:
    return ["#EXTM3U", f"#EXT-X-VERSION:{MASTER_VERSION}", "#EXT-X-INDEPENDENT-SEGMENTS"]


def _stream_inf(variant: Variant) -> tuple[str, str]:
    attributes = ",".join(
        [
            f"BANDWIDTH={variant.peak_bandwidth}",
            f"AVERAGE-BANDWIDTH={variant.average_bandwidth}",
            f'CODECS="{variant.codecs}"',
            f"RESOLUTION={variant.width}x{variant.height}",
            f"FRAME-RATE={variant.frame_rate:.3f}",
        ]
    )
    return _STREAM_INF + attributes, variant.uri


def _listing_order(
    ascending: Sequence[_Item], bandwidth: Callable[[_Item], int], near_bps: int
) -> list[_Item]:
    """Players start with the first listed: the item nearest `near_bps` (the lower on a tie)
    goes first, the rest follow in the given ascending order."""
    rest = list(ascending)
    first = min(range(len(rest)), key=lambda i: abs(bandwidth(rest[i]) - near_bps))
    return [rest.pop(first), *rest]


def _split_master(text: str) -> tuple[list[str], list[_Block]]:
    """Lines outside the variants (blank lines dropped), and the variant blocks in order."""
    head: list[str] = []
    blocks: list[_Block] = []
    lines = iter(text.splitlines())
    for line in lines:
        if line.startswith(_STREAM_INF):
            uri = next((candidate for candidate in lines if candidate.strip()), "")
            blocks.append(_block(line, uri))
        elif line.strip():
            head.append(line)
    if not blocks:
        raise ValueError("master playlist has no EXT-X-STREAM-INF")
    return head, blocks


def _block(tag: str, uri: str) -> _Block:
    if not uri or uri.startswith("#"):
        raise ValueError(f"no URI after {tag!r}")
    attributes = dict(_ATTRIBUTE.findall(tag.removeprefix(_STREAM_INF)))
    try:
        width, height = (int(side) for side in attributes["RESOLUTION"].split("x"))
        return _Block(tag, uri, int(attributes["BANDWIDTH"]), min(width, height))
    except (KeyError, ValueError) as error:
        raise ValueError(f"unusable BANDWIDTH or RESOLUTION in {tag!r}") from error


# --- codecs ----------------------------------------------------------------------------------

_AVC_PROFILES = {  # ffprobe profile name -> (profile_idc, constraint flag byte x264 writes)
    "high": (0x64, 0x00),
    "main": (0x4D, 0x40),
    "constrained baseline": (0x42, 0xC0),
    "baseline": (0x42, 0x00),
}
_AVC_LEVELS = frozenset(
    {9, 10, 11, 12, 13, 20, 21, 22, 30, 31, 32, 40, 41, 42, 50, 51, 52, 60, 61, 62}
)


def _avc_profile(profile: str | None) -> tuple[int, int]:
    key = (profile or "").strip().lower()
    if key not in _AVC_PROFILES:
        raise ValueError(f"no codec string for H.264 profile {profile!r}")
    return _AVC_PROFILES[key]


def _avc_level(level: int | None) -> int:
    if level is None or level not in _AVC_LEVELS:
        raise ValueError(f"not an H.264 level_idc: {level!r}")
    return level
