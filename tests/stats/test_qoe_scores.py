"""Mux-style experience scores against the spec's vector 19 and Mux's published curves."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reelout.stats.qoe_scores import (
    mean_score,
    playback_success_score,
    smoothness_score,
    startup_time_score,
)


@pytest.mark.parametrize(("seconds", "score"), [(0.4, 95), (2.0, 80), (8.0, 50), (20.0, 29)])
def test_vector_19_startup_time_score_mux(seconds: float, score: int) -> None:
    """Vector 19 (mux.com/docs, Startup Time Score examples): 400 ms, 2 s, 8 s, 20 s.

    Read as Mux prints them: the score 8/(8 + s)*100 rounded to the nearest whole number
    (95.24 -> 95, 28.57 -> 29), so the exact score lies within 0.5 of each."""
    got = startup_time_score(seconds)
    assert round(got) == score
    assert got == pytest.approx(score, abs=0.5)


def test_smoothness_parts() -> None:
    """The two halves of the curve, worked by hand: four stalls give 100/sqrt(1 + 2^2) = 100/sqrt(5)
    and a 5 % stall share 100 e^(-0.5); Mux's docs quote them (a 20-minute view with four 15 s
    stalls) as 44 and 60, which fixes the share as a fraction (0.05), not a percentage (5)."""
    assert smoothness_score(0, 0.0) == 100.0
    assert smoothness_score(4, 0.0) == pytest.approx((100 / math.sqrt(5) + 100) / 2, rel=1e-15)
    assert smoothness_score(0, 0.05) == pytest.approx((100 + 100 * math.exp(-0.5)) / 2, rel=1e-15)
    assert math.floor(100 / math.sqrt(5)) == 44 and math.floor(100 * math.exp(-0.5)) == 60
    assert smoothness_score(4, 60 / 1200) == pytest.approx(52.68721, abs=1e-5)


@pytest.mark.parametrize(
    ("outcome", "seconds", "score"),
    [
        ("played", 30.0, 100.0),
        ("exited_before_start", 5.0, 50.0),
        ("exited_before_start", 1.0, 50.0),
        ("exited_before_start", 0.4, None),  # shorter than a second: likely accidental, unscored
        ("failed", 0.2, 0.0),
        ("failed", 300.0, 0.0),
    ],
)
def test_playback_success_score(outcome: str, seconds: float, score: float | None) -> None:
    assert playback_success_score(outcome, seconds) == score  # type: ignore[arg-type]


def test_the_mean_skips_unscored_views() -> None:
    assert mean_score([100.0, None, 50.0, 0.0]) == 50.0
    assert mean_score([None, None]) is None
    assert mean_score([]) is None


def test_impossible_measurements_are_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        startup_time_score(-0.1)
    with pytest.raises(ValueError, match="rebuffer"):
        smoothness_score(-1, 0.0)
    with pytest.raises(ValueError, match="rebuffer"):
        smoothness_score(0, 1.5)


@given(st.floats(0, 3600), st.floats(0, 3600))
def test_a_slower_start_never_scores_higher(one: float, other: float) -> None:
    fast, slow = sorted((one, other))
    assert 0 < startup_time_score(slow) <= startup_time_score(fast) <= 100


@given(st.integers(0, 500), st.integers(0, 500), st.floats(0, 1), st.floats(0, 1))
def test_more_stalling_never_scores_higher(c1: int, c2: int, f1: float, f2: float) -> None:
    few, many = sorted((c1, c2))
    less, more = sorted((f1, f2))
    assert 0 < smoothness_score(many, more) <= smoothness_score(few, less) <= 100
