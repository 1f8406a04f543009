"""tus 1.0.0 wire grammar: header parsing and formatting, pure and I/O-free.

Hand-written because no maintained Python library implements the *server* side of tus
(tuspy is a client); every rule here is a line of tus-protocol-1.0.0.md.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from urllib.parse import urlsplit

from reelout.errors import BadRequest

TUS_VERSION = "1.0.0"
OFFSET_CONTENT_TYPE = "application/offset+octet-stream"
EXTENSIONS = (
    "creation",
    "creation-with-upload",
    "creation-defer-length",
    "termination",
    "expiration",
    "checksum",
    "concatenation",
)
CHECKSUM_ALGORITHMS = ("sha1", "md5", "sha256", "sha512")
VIDEO_ID_HEADER = "Reelout-Video-Id"
TUS_HEADERS = (
    "Upload-Offset",
    "Upload-Length",
    "Tus-Resumable",
    "Tus-Version",
    "Tus-Extension",
    "Tus-Max-Size",
    "Tus-Checksum-Algorithm",
    "Upload-Metadata",
    "Upload-Defer-Length",
    "Upload-Concat",
    "Upload-Expires",
    "Upload-Checksum",
)
REQUEST_HEADERS = (
    "Authorization",
    "Content-Type",
    "X-Requested-With",
    "X-HTTP-Method-Override",
    "X-Request-ID",
    *TUS_HEADERS,
)
EXPOSE_HEADERS = ("Location", *TUS_HEADERS, VIDEO_ID_HEADER)

_UPLOAD_ID = re.compile(r"^[0-9a-f]{32}$")
_METADATA_KEY = re.compile(r"^[^\s,]+$")
_INTEGER = re.compile(r"^[0-9]{1,19}$")


class TusHeaderError(BadRequest):
    """A tus header is malformed (400); `code` names which rule it broke."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message, code=code)


def parse_non_negative(name: str, value: str | None) -> int | None:
    """An absent header gives None; anything but a plain non-negative integer is an error."""
    if value is None:
        return None
    value = value.strip()
    if not _INTEGER.match(value):
        raise TusHeaderError(
            f"INVALID_{name.upper().replace('-', '_')}",
            f"{name} must be a non-negative integer, got {value!r}",
        )
    return int(value)


def is_upload_id(value: str) -> bool:
    return bool(_UPLOAD_ID.match(value))


Metadata = list[tuple[str, str | None]]


def parse_metadata(header: str | None, max_bytes: int) -> Metadata:
    """Parse `key b64,key2 b64,flag` keeping the base64 text, so HEAD can echo it exactly."""
    if header is None or not header.strip():
        return []
    if len(header.encode()) > max_bytes:
        raise TusHeaderError(
            "METADATA_TOO_LARGE",
            f"Upload-Metadata is {len(header.encode())} bytes; the limit is {max_bytes}",
        )
    pairs: Metadata = []
    seen: set[str] = set()
    for item in header.split(","):
        parts = item.strip().split(" ")
        key = parts[0]
        if not key or not _METADATA_KEY.match(key) or len(parts) > 2:
            raise TusHeaderError("INVALID_METADATA", f"malformed Upload-Metadata pair {item!r}")
        if key in seen:
            raise TusHeaderError("INVALID_METADATA", f"Upload-Metadata repeats the key {key!r}")
        seen.add(key)
        value = parts[1] if len(parts) == 2 else None
        if value is not None:
            try:
                base64.b64decode(value, validate=True)
            except binascii.Error:
                raise TusHeaderError(
                    "INVALID_METADATA", f"Upload-Metadata value of {key!r} is not base64"
                ) from None
        pairs.append((key, value))
    return pairs


def format_metadata(pairs: Metadata) -> str:
    return ",".join(key if value is None else f"{key} {value}" for key, value in pairs)


def decode_metadata(pairs: Metadata) -> dict[str, str]:
    """Metadata as text (undecodable bytes replaced); flags map to the empty string."""
    out: dict[str, str] = {}
    for key, value in pairs:
        raw = base64.b64decode(value) if value else b""
        out[key] = raw.decode("utf-8", errors="replace")
    return out


@dataclass(frozen=True)
class Checksum:
    algorithm: str
    digest: bytes


def parse_checksum(header: str | None) -> Checksum | None:
    if header is None:
        return None
    algorithm, sep, encoded = header.strip().partition(" ")
    if not sep or not encoded or " " in encoded:
        raise TusHeaderError(
            "INVALID_CHECKSUM", "Upload-Checksum must be '<algorithm> <base64 digest>'"
        )
    if algorithm not in CHECKSUM_ALGORITHMS:
        raise TusHeaderError(
            "UNSUPPORTED_CHECKSUM_ALGORITHM",
            f"checksum algorithm {algorithm!r} is not supported; use one of "
            + ", ".join(CHECKSUM_ALGORITHMS),
        )
    try:
        digest = base64.b64decode(encoded, validate=True)
    except binascii.Error:
        raise TusHeaderError("INVALID_CHECKSUM", "Upload-Checksum digest is not base64") from None
    return Checksum(algorithm, digest)


@dataclass(frozen=True)
class Concat:
    """`Upload-Concat`: a partial upload, or a final one made of the listed parts (their ids)."""

    partial: bool
    parts: tuple[str, ...] = ()


def parse_concat(header: str | None) -> Concat | None:
    if header is None:
        return None
    value = header.strip()
    if value == "partial":
        return Concat(partial=True)
    kind, sep, rest = value.partition(";")
    if kind != "final" or not sep or not rest.strip():
        raise TusHeaderError(
            "INVALID_CONCAT", "Upload-Concat must be 'partial' or 'final;<url> <url> ...'"
        )
    ids = tuple(upload_id_from_url(url) for url in rest.split())
    return Concat(partial=False, parts=ids)


def upload_id_from_url(url: str) -> str:
    """The upload id is the last path segment of an absolute or relative upload URL."""
    path = urlsplit(url).path.rstrip("/")
    candidate = path.rsplit("/", 1)[-1]
    if not is_upload_id(candidate):
        raise TusHeaderError("INVALID_CONCAT", f"{url!r} is not an upload URL of this server")
    return candidate


def http_date(when: datetime) -> str:
    """RFC 9110 IMF-fixdate, as Upload-Expires wants it."""
    return format_datetime(when, usegmt=True)
