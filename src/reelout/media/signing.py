"""Signed playback tokens for videos that require them: issue, and check on every request.

Pure (the secret and the time are passed in). A token is `<expiry>-<HMAC-SHA256(uid.expiry)>`,
with the expiry rounded up to a BUCKET_SECONDS boundary: every viewer who gets a token for the
same video within one bucket gets the same token, so the same URLs, and shared caches (a CDN,
nginx) keep serving one copy to all of them. Responses carry `max-age` no longer than the
token's life, so nothing cached outlives it.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from enum import StrEnum

BUCKET_SECONDS = 300
SIGNATURE_HEX = 32  # 128 bits of HMAC-SHA256: unforgeable, short enough for every URL


class TokenProblem(StrEnum):
    missing = "TOKEN_REQUIRED"
    malformed = "INVALID_TOKEN"
    forged = "INVALID_TOKEN"
    expired = "TOKEN_EXPIRED"


@dataclass(frozen=True)
class Checked:
    """A token's verdict: `problem` None means valid, with `seconds_left` of life."""

    problem: TokenProblem | None
    seconds_left: int = 0


def _signature(key: bytes, uid: str, expires: int) -> str:
    mac = hmac.new(key, f"playback.{uid}.{expires}".encode(), hashlib.sha256)
    return mac.hexdigest()[:SIGNATURE_HEX]


def expiry_for(now: int, ttl_seconds: int) -> int:
    """The token's expiry: at least `ttl_seconds` away, rounded up to a bucket boundary."""
    earliest = now + ttl_seconds
    return -(-earliest // BUCKET_SECONDS) * BUCKET_SECONDS


def issue(key: bytes, uid: str, now: int, ttl_seconds: int) -> tuple[str, int]:
    """A token for playing `uid` and its expiry (unix seconds)."""
    expires = expiry_for(now, ttl_seconds)
    return f"{expires}-{_signature(key, uid, expires)}", expires


def check(key: bytes, uid: str, token: str | None, now: int) -> Checked:
    """Is `token` a valid, unexpired token for `uid`?"""
    if not token:
        return Checked(TokenProblem.missing)
    expires_text, _, signature = token.partition("-")
    if not expires_text.isdigit() or len(signature) != SIGNATURE_HEX:
        return Checked(TokenProblem.malformed)
    expires = int(expires_text)
    if not hmac.compare_digest(signature, _signature(key, uid, expires)):
        return Checked(TokenProblem.forged)
    if expires <= now:
        return Checked(TokenProblem.expired)
    return Checked(None, expires - now)
