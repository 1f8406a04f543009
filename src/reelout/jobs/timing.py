"""Pure timing rules of the jobs domain: retry backoff with jitter and periodic schedule slots."""

from __future__ import annotations

from datetime import datetime, timedelta

RETRY_BASE_SECONDS = 5.0
RETRY_CAP_SECONDS = 3600.0
_MAX_EXPONENT = 60  # 2**60 * base is far past any cap; keeps the float finite


def retry_ceiling(
    attempts: int, *, base: float = RETRY_BASE_SECONDS, cap: float = RETRY_CAP_SECONDS
) -> float:
    """The largest wait before the next try after `attempts` failed tries: min(base*2**(n-1), cap)."""
    if attempts < 1:
        raise ValueError("attempts starts at 1")
    if base <= 0 or cap <= 0:
        raise ValueError("base and cap must be positive")
    return min(base * 2.0 ** min(attempts - 1, _MAX_EXPONENT), cap)


def retry_delay(
    attempts: int,
    jitter: float,
    *,
    base: float = RETRY_BASE_SECONDS,
    cap: float = RETRY_CAP_SECONDS,
) -> float:
    """Wait before the next try ("equal jitter"): half the ceiling plus `jitter` (0..1) of the rest."""
    if not 0.0 <= jitter <= 1.0:
        raise ValueError("jitter is a fraction in [0, 1]")
    ceiling = retry_ceiling(attempts, base=base, cap=cap)
    return ceiling / 2 + ceiling / 2 * jitter


def next_slot_after(slot: datetime, interval: timedelta, now: datetime) -> datetime:
    """The first slot on the grid `slot + k*interval` (k any integer) strictly after `now`."""
    if interval <= timedelta(0):
        raise ValueError("interval must be positive")
    return slot + ((now - slot) // interval + 1) * interval
