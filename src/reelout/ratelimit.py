"""Limits for public endpoints, pure: token buckets bounded in memory, concurrent slots, jitter.

Hand-written: the rules are short and must read the injected clock, which the rate-limit
libraries for Starlette (slowapi, limits) do not take; and a slot must be checked and taken in
one step, which a counter in their storage does not give.
"""

from __future__ import annotations

import math
import random
import threading
from collections import OrderedDict
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    at: float


class TokenBuckets:
    """`rate` tokens a second per name, at most `burst` saved up, one per request; at most
    `max_buckets` names remembered.

    A bucket left alone until it is full again is the same as no bucket, so such buckets are
    dropped as they are met (oldest first). When every remembered bucket is still busy, the
    least recently used one is dropped: that caller starts again with a full burst, so memory
    stays bounded at the price of leniency, never of refusing anyone wrongly."""

    def __init__(self, rate: float, burst: int, max_buckets: int) -> None:
        self.rate, self.burst, self.max_buckets = rate, burst, max_buckets
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._buckets)

    def wait(self, name: str, now: float) -> float:
        """0.0 when `name` has a token now (without taking it); else the seconds until it has."""
        with self._lock:
            tokens = self._tokens(name, now)
        return 0.0 if tokens >= 1 else (1 - tokens) / self.rate

    def take(self, name: str, now: float) -> None:
        """Spend one of `name`'s tokens (call after `wait` said 0)."""
        with self._lock:
            tokens = self._tokens(name, now)
            bucket = self._buckets.get(name)
            if bucket is None:
                self._evict(now)
                bucket = self._buckets[name] = _Bucket(tokens, now)
            bucket.tokens, bucket.at = tokens - 1, now
            self._buckets.move_to_end(name)

    def _tokens(self, name: str, now: float) -> float:
        bucket = self._buckets.get(name)
        if bucket is None:
            return float(self.burst)
        return min(float(self.burst), bucket.tokens + max(0.0, now - bucket.at) * self.rate)

    def _evict(self, now: float) -> None:
        """Drop full (idle) buckets from the oldest end, then the oldest if still at the bound."""
        while self._buckets:
            name, bucket = next(iter(self._buckets.items()))
            if bucket.tokens + max(0.0, now - bucket.at) * self.rate < self.burst:
                break
            del self._buckets[name]
        while len(self._buckets) >= self.max_buckets > 0:
            self._buckets.popitem(last=False)


class CallerLimits:
    """Requests of one caller (key + client address) and, as a safety net, of one key over all
    addresses; a rate of 0 turns that limit off."""

    def __init__(
        self,
        caller: tuple[float, int],
        key: tuple[float, int],
        max_buckets: int,
        rng: random.Random | None = None,
    ) -> None:
        self._callers = TokenBuckets(*caller, max_buckets) if caller[0] > 0 else None
        self._keys = TokenBuckets(*key, max_buckets) if key[0] > 0 else None
        self._rng = rng or random.Random()

    @property
    def on(self) -> bool:
        return self._callers is not None or self._keys is not None

    def check(self, key: str, address: str, now: float) -> int | None:
        """None when the request may go ahead (its tokens are taken); else Retry-After seconds."""
        caller = f"{key} {address}"
        limits = [(b, n) for b, n in ((self._callers, caller), (self._keys, key)) if b is not None]
        wait = max((buckets.wait(name, now) for buckets, name in limits), default=0.0)
        if wait > 0:
            return retry_after(wait, self._rng)
        for buckets, name in limits:
            buckets.take(name, now)
        return None


def retry_after(wait: float, rng: random.Random) -> int:
    """Whole seconds to wait, spread over [wait, 1.5 * wait] (at least one more second), so
    the callers refused together do not all come back in the same second."""
    least = max(1, math.ceil(wait))
    return least + rng.randint(0, max(1, least // 2))


@dataclass
class Slot:
    """A place taken in `Slots`; `release` gives it back (once, however often it is called)."""

    slots: Slots
    key: str
    caller: str
    released: bool = False

    def release(self) -> None:
        self.slots._give_back(self)


class Slots:
    """Things held open at once (event streams): at most `total`, `per_key` for one key and
    `per_caller` for one key + address (0: no such limit). Checked and taken in one step."""

    def __init__(self, total: int, per_key: int, per_caller: int) -> None:
        self.total, self.per_key, self.per_caller = total, per_key, per_caller
        self.open = 0
        self._keys: dict[str, int] = {}
        self._callers: dict[str, int] = {}
        self._lock = threading.Lock()

    def acquire(self, key: str, address: str) -> Slot | str:
        """A slot, or which limit is reached: "total", "key" or "caller"."""
        caller = f"{key} {address}"
        with self._lock:
            if self.open >= self.total:
                return "total"
            if self.per_key and self._keys.get(key, 0) >= self.per_key:
                return "key"
            if self.per_caller and self._callers.get(caller, 0) >= self.per_caller:
                return "caller"
            self.open += 1
            self._keys[key] = self._keys.get(key, 0) + 1
            self._callers[caller] = self._callers.get(caller, 0) + 1
            return Slot(self, key, caller)

    def held_by(self, key: str) -> int:
        with self._lock:
            return self._keys.get(key, 0)

    def _give_back(self, slot: Slot) -> None:
        with self._lock:
            if slot.released:
                return
            slot.released = True
            self.open -= 1
            _decrement(self._keys, slot.key)
            _decrement(self._callers, slot.caller)


def _decrement(counts: dict[str, int], name: str) -> None:
    left = counts[name] - 1
    if left:
        counts[name] = left
    else:
        del counts[name]


def spread(open_streams: int, per_second: float, rng: random.Random) -> float:
    """A random delay in [0, open_streams / per_second) seconds: a change's re-fetches then
    arrive at about `per_second`, and a small fleet hears of it at once."""
    if per_second <= 0 or open_streams <= 1:
        return 0.0
    return rng.uniform(0.0, open_streams / per_second)
