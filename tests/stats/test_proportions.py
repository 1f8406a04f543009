"""Intervals for a difference of proportions against the spec's vector 4 (statsmodels, R PropCIs)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reelout.stats.proportions import agresti_caffo, newcombe, score_difference, wald_difference

Interval = Callable[[int, int, int, int], tuple[float, float]]
ALL = [wald_difference, agresti_caffo, newcombe, score_difference]


def test_vector_4_difference_intervals_propcis() -> None:
    """Vector 4 (statsmodels `test_confint_2indep_propcis`, R PropCIs): 7/34 vs 1/34.

    Read as R's `wald2ci(7, 34, 1, 34)` and `diffscoreci(7, 34, 1, 34)` compute it, the
    difference first minus second, 7/34 - 1/34. Here every interval is for arm 2 - arm 1 (as
    `two_proportion_z`), so the first arm is 1/34 and the second 7/34. "score" is PropCIs'
    `diffscoreci`, the Miettinen-Nurminen interval with its N/(N - 1) factor. The spec allows
    +/-0.002 for the row, the gap statsmodels' own score variant needs; solved exactly, the
    interval meets R's printed digits, so all three are held to 1e-7 (R prints 7-8 digits)."""
    assert wald_difference(1, 34, 7, 34) == (
        pytest.approx(0.02916942, abs=1e-7),
        pytest.approx(0.32377176, abs=1e-7),
    )
    assert agresti_caffo(1, 34, 7, 34) == (
        pytest.approx(0.01161167, abs=1e-7),
        pytest.approx(0.32172166, abs=1e-7),
    )
    assert score_difference(1, 34, 7, 34) == (
        pytest.approx(0.0270416, abs=1e-7),
        pytest.approx(0.3452912, abs=1e-7),
    )


def test_newcombe_matches_statsmodels() -> None:
    """The spec gives no Newcombe figures for vector 4. Computed once, independently, with
    statsmodels 0.15 `confint_proportions_2indep(7, 34, 1, 34, method="newcomb")`:
    (0.018921443885772937, 0.3403686870327074); and for 14/28 vs 16/30 (arm 2 - arm 1 = 16/30 -
    14/28): (-0.2110311284961098, 0.2724345142951782)."""
    assert newcombe(1, 34, 7, 34) == (
        pytest.approx(0.018921443885772937, abs=1e-12),
        pytest.approx(0.3403686870327074, abs=1e-12),
    )
    assert newcombe(14, 28, 16, 30) == (
        pytest.approx(-0.2110311284961098, abs=1e-12),
        pytest.approx(0.2724345142951782, abs=1e-12),
    )


def test_the_score_interval_reaches_the_edges() -> None:
    """All successes against none: the observed difference is 1 and is the upper limit."""
    low, high = score_difference(0, 10, 10, 10)
    assert high == 1.0 and 0.6 < low < 1.0
    low, high = score_difference(0, 10, 0, 10)
    assert low == pytest.approx(-high, abs=1e-9) and 0 < high < 0.35


@pytest.mark.parametrize("interval", ALL)
def test_empty_arms_and_impossible_counts_are_refused(interval: Interval) -> None:
    with pytest.raises(ValueError, match="at least one unit"):
        interval(0, 0, 1, 2)
    with pytest.raises(ValueError, match="successes"):
        interval(3, 2, 1, 2)


arms = st.integers(1, 120).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n)))


@pytest.mark.parametrize("interval", ALL)
@given(arms, arms)
def test_an_interval_holds_the_observed_difference(
    interval: Interval, one: tuple[int, int], two: tuple[int, int]
) -> None:
    low, high = interval(*one, *two)
    observed = two[0] / two[1] - one[0] / one[1]
    assert -1 <= low <= observed + 1e-12 and observed - 1e-12 <= high <= 1


@pytest.mark.parametrize("interval", ALL)
@given(arms, arms)
def test_swapping_the_arms_mirrors_the_interval(
    interval: Interval, one: tuple[int, int], two: tuple[int, int]
) -> None:
    low, high = interval(*one, *two)
    back_low, back_high = interval(*two, *one)
    assert (low, high) == (pytest.approx(-back_high, abs=1e-9), pytest.approx(-back_low, abs=1e-9))


@pytest.mark.parametrize("interval", ALL)
@given(arms, arms)
def test_twice_the_units_at_the_same_rates_narrow_the_interval(
    interval: Interval, one: tuple[int, int], two: tuple[int, int]
) -> None:
    low, high = interval(*one, *two)
    wide_low, wide_high = interval(2 * one[0], 2 * one[1], 2 * two[0], 2 * two[1])
    assert wide_high - wide_low <= high - low + 1e-12
