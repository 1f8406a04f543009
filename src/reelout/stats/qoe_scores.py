"""Per-view 0-100 experience scores in Mux Data's definitions (spec §3.1 "Scores", vector 19):
startup time, smoothness and playback success, and their mean over views.

Closed-form curves published by Mux; no library computes them, so they are written here. Pure
functions over a view's measured facts: the telemetry rollups decide which views have which.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Literal

MIN_SCORED_EXIT_SECONDS = (
    1.0  # Mux scores no exit before start shorter than this (likely accidental)
)

ViewOutcome = Literal["played", "exited_before_start", "failed"]


def startup_time_score(startup_seconds: float) -> float:
    """8 / (8 + s) * 100: 100 at an instant start, 50 at 8 s. Views that never showed a first
    frame (exits before start, startup failures) have no startup time and so no score."""
    if startup_seconds < 0:
        raise ValueError("a startup time cannot be negative")
    return 800 / (8 + startup_seconds)


def smoothness_score(rebuffer_count: int, rebuffer_fraction: float) -> float:
    """The mean of 100 / sqrt(1 + (count/2)^2) and 100 e^(-10 * rebuffer share), the share being
    stall time over watch time as a fraction (0.05 for 5 %)."""
    if rebuffer_count < 0 or not 0 <= rebuffer_fraction <= 1:
        raise ValueError("a rebuffer count is >= 0 and a rebuffer share lies in [0, 1]")
    by_count = 100 / math.sqrt(1 + (rebuffer_count / 2) ** 2)
    by_share = 100 * math.exp(-10 * rebuffer_fraction)
    return (by_count + by_share) / 2


def playback_success_score(outcome: ViewOutcome, view_seconds: float) -> float | None:
    """100 for a view that played, 50 for an exit before the first frame, 0 for a fatal error;
    none for an exit before start shorter than a second."""
    if outcome == "failed":
        return 0.0
    if outcome == "exited_before_start":
        return 50.0 if view_seconds >= MIN_SCORED_EXIT_SECONDS else None
    return 100.0


def mean_score(scores: Iterable[float | None]) -> float | None:
    """The mean over the views that have a score; none when no view has one."""
    scored = [s for s in scores if s is not None]
    return sum(scored) / len(scored) if scored else None
