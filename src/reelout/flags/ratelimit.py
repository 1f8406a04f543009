"""Per-key token buckets for OFREP: a steady rate with a burst, and how long to wait when empty.

Hand-written: the rule is ten lines and needs the injected clock, which the rate-limit
libraries for Starlette (slowapi, limits) do not take.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    at: float


class TokenBuckets:
    """`rate` tokens per second per key, at most `burst` saved up; one token per request."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def take(self, key: str, now: float) -> int | None:
        """None when the request may go ahead; else the whole seconds to wait (Retry-After)."""
        with self._lock:
            bucket = self._buckets.setdefault(key, _Bucket(float(self.burst), now))
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.at) * self.rate)
            bucket.at = now
            if bucket.tokens >= 1:
                bucket.tokens -= 1
                return None
            return max(1, math.ceil((1 - bucket.tokens) / self.rate))
