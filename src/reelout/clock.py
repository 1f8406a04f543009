"""The injectable clock: every timer, lease, expiry and schedule reads time through it."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Wall time (UTC, aware) for records and monotonic seconds for durations."""

    def now(self) -> datetime: ...

    def monotonic(self) -> float: ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()


class FastClock:
    """A clock that runs `speed` times faster than real time from its creation (wall and
    monotonic alike): the simulation-only REELOUT_CLOCK_SPEED, so a plan's hours pass in
    seconds while every timer, schedule and window still reads one consistent clock."""

    def __init__(self, speed: float) -> None:
        self.speed = speed
        self._wall = datetime.now(UTC)
        self._start = time.monotonic()

    def _elapsed(self) -> float:
        return (time.monotonic() - self._start) * self.speed

    def now(self) -> datetime:
        return self._wall + timedelta(seconds=self._elapsed())

    def monotonic(self) -> float:
        return self._start + self._elapsed()


def clock_for(speed: float) -> Clock:
    """The real clock, or a FastClock when the simulation knob asks for another speed."""
    return SystemClock() if speed == 1 else FastClock(speed)


class ManualClock:
    """A clock that moves only when told to: for tests, simulations and clock-jump drills."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 1, tzinfo=UTC)
        self._mono = 0.0
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def monotonic(self) -> float:
        with self._lock:
            return self._mono

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += timedelta(seconds=seconds)
            self._mono += max(seconds, 0.0)

    def set(self, when: datetime) -> None:
        """Jump the wall clock (forwards or backwards); monotonic time is unaffected."""
        with self._lock:
            self._now = when
