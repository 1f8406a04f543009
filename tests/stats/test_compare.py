"""The comparison statistics against the outside reference vectors of the spec (§1.2)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reelout.stats.compare import (
    Estimate,
    Moments,
    RatioMoments,
    moments_estimate,
    normal_bounds,
    ratio_estimate,
    sample_size_per_arm,
    sequential,
    sequential_lower_bound,
    sequential_upper_bound,
    sidak,
    srm_p_value,
    two_proportion_z,
    welch,
    wilson,
)

A7 = Moments(3407, 1396.87, 52377.9767)  # growthbook test_tests.py
B7 = Moments(3461, 2422.7, 134698.29)


def test_pooled_z_matches_r_prop_test() -> None:  # vectors 1 and 2 (statsmodels, R)
    z, p = two_proportion_z(73, 86, 90, 93)
    assert p == pytest.approx(0.00533824886503131, rel=1e-9)
    assert abs(z) == pytest.approx(2.78588, abs=1e-5)
    assert two_proportion_z(73, 86, 114, 136)[1] == pytest.approx(0.8327574849753566, rel=1e-9)


@pytest.mark.parametrize(
    ("x", "n", "low", "high"),
    [  # vector 5 (statsmodels results_proportion, R binom.confint)
        (18, 20, 0.6989663547715128, 0.972133518786232),
        (4, 20, 0.0806576625797981, 0.4160174322518935),
        (4, 200, 0.00780442641634947, 0.05028708690582643),
        (190, 200, 0.910421851861224, 0.972617354399236),
        (0, 30, 0.0, 0.11351339),
        (30, 30, 0.8864866, 1.0),
    ],
)
def test_wilson_interval(x: int, n: int, low: float, high: float) -> None:
    got = wilson(x, n)
    assert got == (pytest.approx(low, abs=1e-7), pytest.approx(high, abs=1e-7))


@pytest.mark.parametrize(
    ("observed", "weights", "p"),
    [  # vector 6 (growthbook stats.test.ts)
        ([1000, 1200], [0.5, 0.5], 0.000020079),
        ([135, 115], [0.5, 0.5], 0.205903211),
        ([310, 98], [0.75, 0.25], 0.647434186),
        ([0, 10, 10], [0.34, 0.33, 0.33], 0.005790624),
        ([500, 500, 600], [0.34, 0.33, 0.33], 0.000592638),
        ([1000, 1200, 900], [0.5, 0.5, 0.0], 0.000020079),
    ],
)
def test_sample_ratio_mismatch(observed: list[int], weights: list[float], p: float) -> None:
    assert srm_p_value(observed, weights) == pytest.approx(p, abs=1e-9)


def test_srm_without_data_or_arms_is_no_evidence() -> None:
    assert srm_p_value([0, 0], [0.5, 0.5]) == 1.0
    assert srm_p_value([10, 5], [1.0, 0.0]) == 1.0


def test_welch_absolute_and_relative() -> None:  # vectors 7 and 8
    a, b = moments_estimate(A7), moments_estimate(B7)
    absolute = welch(a, b)
    assert absolute.effect == pytest.approx(0.29, abs=1e-5)
    assert absolute.se == pytest.approx(0.12478, abs=1e-5)
    assert (absolute.lower, absolute.upper) == (
        pytest.approx(0.04538, abs=1e-5),
        pytest.approx(0.53462, abs=1e-5),
    )
    assert absolute.p_value == pytest.approx(0.02016, abs=1e-5)
    rel = welch(a, b, relative=True)
    assert (rel.effect, rel.se) == (
        pytest.approx(0.70732, abs=1e-5),
        pytest.approx(0.37879, abs=1e-5),
    )
    assert (rel.lower, rel.upper) == (
        pytest.approx(-0.03526, abs=1e-5),
        pytest.approx(1.44989, abs=1e-5),
    )
    assert rel.p_value == pytest.approx(0.06191, abs=1e-5)


def test_welch_relative_on_proportions() -> None:  # vector 9: s² = p(1 - p)
    got = welch(Estimate.of_proportion(14, 28), Estimate.of_proportion(16, 30), relative=True)
    assert (got.effect, got.se) == (
        pytest.approx(0.06667, abs=1e-5),
        pytest.approx(0.2717, abs=1e-4),
    )
    assert (got.lower, got.upper) == (
        pytest.approx(-0.47767, abs=1e-4),
        pytest.approx(0.61101, abs=1e-4),
    )
    assert got.p_value == pytest.approx(0.80707, abs=1e-4)


def test_sequential_relative_on_proportions() -> None:  # vector 10, N* = 5000
    got = sequential(
        Estimate.of_proportion(1396, 3000), Estimate.of_proportion(2422, 3461), relative=True
    )
    assert (got.effect, got.se) == (
        pytest.approx(0.50386, abs=1e-5),
        pytest.approx(0.03386, abs=1e-5),
    )
    assert (got.lower, got.upper) == (
        pytest.approx(0.40098, abs=1e-5),
        pytest.approx(0.60675, abs=1e-5),
    )


def test_sequential_absolute_two_and_one_sided() -> None:  # vector 12 and the computed F6 check
    a, b = moments_estimate(Moments(3000, 1396.87, 52377.9767)), moments_estimate(B7)
    two = sequential(a, b)
    assert two.effect == pytest.approx(0.23437666666666668, rel=1e-12)
    assert two.se == pytest.approx(0.12983081254184736, rel=1e-9)
    assert (two.lower, two.upper) == (
        pytest.approx(-0.16012, abs=1e-5),
        pytest.approx(0.62887, abs=1e-5),
    )
    assert two.p_value == pytest.approx(0.760125, abs=1e-6)
    assert sequential_lower_bound(a, b) == pytest.approx(-0.12656844172804982, rel=1e-9)


def test_the_one_sided_upper_bound_mirrors_the_lower_one() -> None:  # vector 12 seen from above
    a, b = moments_estimate(Moments(3000, 1396.87, 52377.9767)), moments_estimate(B7)
    effect = 0.23437666666666668
    lower, upper = sequential_lower_bound(a, b), sequential_upper_bound(a, b)
    assert upper - effect == pytest.approx(effect - lower, rel=1e-12)
    assert upper == pytest.approx(2 * effect + 0.12656844172804982, rel=1e-9)
    # absolute: the upper bound on B - A is minus the lower bound on A - B
    assert sequential_upper_bound(a, b) == pytest.approx(-sequential_lower_bound(b, a), rel=1e-12)


def test_a_relative_upper_bound_divides_by_the_control_not_the_treatment() -> None:
    control, treatment = Estimate.of_proportion(960, 1000), Estimate.of_proportion(900, 1000)
    upper = sequential_upper_bound(control, treatment, relative=True)
    assert upper > (0.900 - 0.960) / 0.960  # the point estimate relative to the control
    swapped = -sequential_lower_bound(treatment, control, relative=True)
    assert upper != pytest.approx(swapped)  # the arms swapped would divide by 0.900


def test_normal_bounds_are_one_sided_at_alpha_each() -> None:
    low, high = normal_bounds(Estimate(10.0, 4.0, 100), alpha=0.025)  # se = 0.2
    assert (low, high) == (pytest.approx(10 - 1.959964 * 0.2), pytest.approx(10 + 1.959964 * 0.2))
    assert normal_bounds(Estimate(1.0, 0.0, 50)) == (1.0, 1.0)


def test_anytime_validity_costs_evidence() -> None:  # the spec's "cost of anytime validity"
    control = Estimate.of_proportion(200, 10_000)
    treatment = Estimate.of_proportion(260, 10_000)
    assert two_proportion_z(200, 10_000, 260, 10_000)[1] == pytest.approx(0.0046, abs=1e-4)
    got = sequential(control, treatment)
    assert (got.lower, got.upper) == (
        pytest.approx(-0.000628, abs=1e-6),
        pytest.approx(0.012628, abs=1e-6),
    )
    assert got.p_value == pytest.approx(0.1177, abs=1e-4)


def test_a_ratio_metric_with_equal_denominators_is_a_mean() -> None:
    """F5 reduces to the plain mean and its variance when every unit's denominator is 1."""
    xs = [0.0, 2.0, 3.0, 7.0, 1.0]
    arm = RatioMoments(
        len(xs), sum(xs), float(len(xs)), sum(x * x for x in xs), float(len(xs)), sum(xs)
    )
    got, plain = (
        ratio_estimate(arm),
        moments_estimate(Moments(len(xs), sum(xs), sum(x * x for x in xs))),
    )
    assert got.mean == pytest.approx(plain.mean) and got.variance == pytest.approx(plain.variance)


@pytest.mark.parametrize(
    ("p1", "p2", "n"),
    [
        (0.02, 0.03, 3823),
        (0.02, 0.025, 13807),
        (0.97, 0.96, 5298),
        (0.99, 0.985, 7747),
        (0.05, 0.06, 8155),
    ],
)
def test_sample_size_table(p1: float, p2: float, n: int) -> None:  # the spec's F12 table
    assert abs(sample_size_per_arm(p1, p2) - n) <= 1


def test_sidak() -> None:
    assert sidak(0.05, 5) == pytest.approx(0.01021, abs=1e-5)
    assert sidak(0.05, 1) == 0.05  # exactly, not 0.050000000000000044
    assert math.isclose(1 - (1 - sidak(0.05, 7)) ** 7, 0.05)


@given(st.integers(0, 500), st.integers(1, 500))
def test_the_wilson_interval_holds_the_observed_rate(x: int, extra: int) -> None:
    n = x + extra
    low, high = wilson(x, n)
    assert 0 <= low <= x / n <= high <= 1


@given(st.integers(0, 300), st.integers(1, 300), st.integers(0, 300), st.integers(1, 300))
def test_swapping_the_arms_flips_the_sign_only(x1: int, e1: int, x2: int, e2: int) -> None:
    z, p = two_proportion_z(x1, x1 + e1, x2, x2 + e2)
    z_back, p_back = two_proportion_z(x2, x2 + e2, x1, x1 + e1)
    assert z == pytest.approx(-z_back) and p == pytest.approx(p_back)
    assert 0 <= p <= 1


@given(
    st.integers(30, 20_000), st.integers(30, 20_000), st.floats(0.01, 0.99), st.floats(0.01, 0.99)
)
def test_an_anytime_valid_interval_is_wider_than_a_fixed_one(
    n_a: int, n_b: int, p_a: float, p_b: float
) -> None:
    a, b = Estimate(p_a, p_a * (1 - p_a), n_a), Estimate(p_b, p_b * (1 - p_b), n_b)
    fixed, anytime = welch(a, b), sequential(a, b)
    assert anytime.lower <= fixed.lower and fixed.upper <= anytime.upper


def test_a_ratio_of_one_unit_has_no_spread_and_of_none_is_refused() -> None:
    one = ratio_estimate(RatioMoments(1, 3.0, 4.0, 9.0, 16.0, 12.0))
    assert (one.mean, one.variance, one.n) == (0.75, 0.0, 1)
    with pytest.raises(ValueError, match="denominator"):
        ratio_estimate(RatioMoments(2, 1.0, 0.0, 1.0, 0.0, 0.0))
