"""HTTP rules for published media (hls-checks.md, "HTTP"): content types, cache lifetimes,
entity tags, and which origins may read a video. Pure: names and stats in, headers out."""

from __future__ import annotations

import os
from dataclasses import dataclass

from reelout.media import encode, pipeline

IMMUTABLE = "public, max-age=31536000, immutable"
MASTER_CACHE = "public, max-age=60"
POSTER_CACHE = "public, max-age=86400"
PLAYLIST_TYPE = "application/vnd.apple.mpegurl"


@dataclass(frozen=True)
class Kind:
    media_type: str
    cache_control: str


def kind_of(name: str) -> Kind | None:
    """What a published file is, from its name inside the version folder; None: not served."""
    if name == encode.HLS_MASTER:
        return Kind(PLAYLIST_TYPE, MASTER_CACHE)
    if name == pipeline.POSTER_NAME:
        return Kind("image/jpeg", POSTER_CACHE)
    if name == pipeline.MP4_NAME:
        return Kind("video/mp4", IMMUTABLE)
    rung, _, leaf = name.partition("/")
    if not rung or "/" in leaf:
        return None
    if leaf == encode.MEDIA_PLAYLIST:
        return Kind(PLAYLIST_TYPE, IMMUTABLE)
    if leaf.endswith(".m4s"):
        return Kind("video/iso.segment", IMMUTABLE)
    if leaf.endswith(".mp4"):  # a rung's init segment
        return Kind("video/mp4", IMMUTABLE)
    return None


def bounded_cache(cache_control: str, seconds_left: int) -> str:
    """The same caching, but never for longer than `seconds_left` (a signed URL's life)."""
    parts = [p.strip() for p in cache_control.split(",")]
    ages = [int(p.removeprefix("max-age=")) for p in parts if p.startswith("max-age=")]
    age = min([seconds_left, *ages])
    kept = [p for p in parts if not p.startswith("max-age=")]
    return ", ".join([*kept, f"max-age={max(age, 0)}"])


def entity_tag(stat: os.stat_result) -> str:
    """A strong ETag from modification time and size (published files never change in place),
    in nginx's own format, so tags agree when nginx serves the files (X-Accel-Redirect)."""
    return f'"{int(stat.st_mtime):x}-{stat.st_size:x}"'


def not_modified(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 If-None-Match (weak comparison): `*` or any listed tag equal to ours."""
    if not if_none_match:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in tags or etag in tags


def cors_headers(origin: str | None, allowed: list[str]) -> dict[str, str]:
    """CORS for one video: anyone when it lists no origins (hls.js needs CORS on every
    playlist and segment), else only the listed origins, echoed back."""
    if not allowed:
        return {"Access-Control-Allow-Origin": "*"}
    headers = {"Vary": "Origin"}
    if origin and (origin in allowed or "*" in allowed):
        headers["Access-Control-Allow-Origin"] = origin
    return headers


@dataclass(frozen=True)
class ByteRange:
    """Bytes first..last (inclusive) of a file of `size` bytes."""

    first: int
    last: int
    size: int

    @property
    def length(self) -> int:
        return self.last - self.first + 1

    @property
    def content_range(self) -> str:
        return f"bytes {self.first}-{self.last}/{self.size}"


UNSATISFIABLE = "unsatisfiable"


def byte_range(header: str | None, size: int) -> ByteRange | str | None:
    """RFC 9110 Range for one range of bytes: the range; UNSATISFIABLE (answer 416); or None,
    the whole file (no header, a header we do not honour: other units, several ranges, bad
    syntax — a server may ignore Range)."""
    if not header or not header.startswith("bytes=") or "," in header:
        return None
    start, dash, end = header[len("bytes=") :].strip().partition("-")
    if not dash or not (start + end).isdigit():
        return None
    if not start:  # the last `end` bytes
        if int(end) == 0 or size == 0:
            return UNSATISFIABLE
        return ByteRange(max(size - int(end), 0), size - 1, size)
    first = int(start)
    last = min(int(end), size - 1) if end else size - 1
    if end and int(end) < first:
        return None
    if first >= size:
        return UNSATISFIABLE
    return ByteRange(first, last, size)


def range_applies(if_range: str | None, etag: str) -> bool:
    """If-Range: the Range holds only while the file is still the one the client has."""
    return if_range is None or if_range.strip() == etag


def public_url(base: str, key: str) -> str:
    """The address of an object behind a CDN (or a public bucket) at `base`."""
    return base.rstrip("/") + "/" + key.lstrip("/")


def redirect_lifetime(presign_seconds: int, token_left: int | None) -> int:
    """How long a presigned URL lives: the setting, never longer than the playback token."""
    if token_left is None:
        return presign_seconds
    return max(1, min(presign_seconds, token_left))


def entity_tag_variant(base: str, extra: str) -> str:
    """A distinct strong tag for a variant of a file (e.g. a rewritten playlist)."""
    return f'{base[:-1]}-{extra}"' if base.endswith('"') else f'"{base}-{extra}"'
