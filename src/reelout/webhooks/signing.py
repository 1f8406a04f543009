"""Webhook signatures (pure): `Reelout-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "t.body">`.

The scheme is Stripe's: the key is the endpoint secret exactly as shown (`whsec_…`, UTF-8), the
signed message is the decimal timestamp, a dot and the raw body bytes. Several `v1=` values may be
present (while a rotated secret is still valid, both sign); any one matching is enough. Written
by hand because it is a dozen lines of `hmac`, and receivers need to see exactly what it does.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

SCHEME = "v1"
DEFAULT_TOLERANCE_SECONDS = 300


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of `b"<timestamp>." + body` under `secret`."""
    message = str(timestamp).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def sign(secret: str, timestamp: int, body: bytes, previous: Sequence[str] = ()) -> str:
    """The header value: `t=<timestamp>,v1=<hex>`, plus one `v1=` per still-valid older secret."""
    parts = [f"t={timestamp}"]
    parts += [f"{SCHEME}={signature(key, timestamp, body)}" for key in (secret, *previous)]
    return ",".join(parts)


def parse(header: str) -> tuple[int, list[str]] | None:
    """`(timestamp, [v1 signatures])` of a header, or None when it has no single integer `t`."""
    timestamps: list[str] = []
    signatures: list[str] = []
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep:
            continue
        if key == "t":
            timestamps.append(value.strip())
        elif key == SCHEME:
            signatures.append(value.strip())
    if len(timestamps) != 1 or not timestamps[0].isdigit():
        return None
    return int(timestamps[0]), signatures


def verify(
    secret: str,
    header: str,
    body: bytes,
    now: int,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
) -> bool:
    """True when a `v1=` value signs `body` under `secret` and `t` is within tolerance of `now`.

    Compares in constant time; a timestamp further than `tolerance_seconds` from `now` either way
    is refused, so a captured request cannot be replayed later."""
    if tolerance_seconds < 0:
        raise ValueError("tolerance_seconds must not be negative")
    parsed = parse(header)
    if parsed is None:
        return False
    timestamp, candidates = parsed
    if abs(now - timestamp) > tolerance_seconds:
        return False
    expected = signature(secret, timestamp, body)
    return any(hmac.compare_digest(expected, candidate) for candidate in candidates)
