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
