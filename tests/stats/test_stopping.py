"""Group-sequential bounds (F8) and Wald's SPRT (F9) against the spec's vectors and by simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reelout.stats.stopping import (
    Spending,
    group_sequential_bounds,
    information_fractions,
    spend_obrien_fleming,
    spend_pocock,
    spend_power,
    sprt_bounds,
    sprt_decision,
    sprt_z_log_likelihood_ratio,
)

SPOTIFY_TOLERANCE = 1e-4  # spec §4.4


def test_vector_14_power_spending_bounds_spotify() -> None:
    """Vector 14 (spotify/confidence `test_seq_bounds_run_over`): two arms at 250, 450, 630 and
    810 units in all against a planned 300, two-sided alpha = 0.01, power spending rho = 2.

    Read as the spec writes it: the sample ran over the plan, so the information fractions are
    each look over the last one, t = [250, 450, 630, 810]/810. The z bounds carry the spec's
    1e-4; the adjusted alphas are printed to 5 decimals, so they are held to 6e-6, the spec's
    tolerance for 5-decimal values (tighter than Spotify's own 1e-4)."""
    t = information_fractions([250, 450, 630, 810], 300)
    assert t == pytest.approx([250 / 810, 450 / 810, 630 / 810, 1.0], abs=1e-15)
    bounds = group_sequential_bounds(t, 0.01, spend_power)
    assert [b.z for b in bounds] == pytest.approx(
        [3.3042, 3.0341, 2.8706, 2.7285], abs=SPOTIFY_TOLERANCE
    )
    assert [b.alpha for b in bounds] == pytest.approx(
        [0.00095, 0.00241, 0.00410, 0.00636], abs=6e-6
    )


def test_five_equal_looks_power_spending() -> None:
    """The spec's computed-here F8 check: alpha = 0.05, rho = 2, five equal looks."""
    bounds = group_sequential_bounds([0.2, 0.4, 0.6, 0.8, 1.0], 0.05)
    assert [b.z for b in bounds] == pytest.approx(
        [3.0902, 2.7141, 2.4727, 2.2798, 2.1140], abs=SPOTIFY_TOLERANCE
    )


def test_one_sided_obrien_fleming_matches_gsdesign() -> None:
    """The spec's computed-here check: one-sided Lan-DeMets O'Brien-Fleming, alpha = 0.025, five
    equal looks, quoted to 3 decimals (held to 6e-4, half a unit of the last one plus rounding)."""
    bounds = group_sequential_bounds(
        [0.2, 0.4, 0.6, 0.8, 1.0], 0.025, spend_obrien_fleming, two_sided=False
    )
    assert [b.z for b in bounds] == pytest.approx([4.877, 3.357, 2.680, 2.290, 2.031], abs=6e-4)


def test_pocock_spending_matches_a_multivariate_normal_solver() -> None:
    """The spec gives no Pocock figures. Computed once, independently, by solving each bound
    with scipy's `multivariate_normal.cdf(lower_limit=...)` (Corr(Z_i, Z_j) = sqrt(t_i/t_j),
    abseps 1e-7): 2.368328, 2.367524, 2.358169, 2.350028 for four equal looks at alpha = 0.05."""
    bounds = group_sequential_bounds([0.25, 0.5, 0.75, 1.0], 0.05, spend_pocock)
    assert [b.z for b in bounds] == pytest.approx(
        [2.368328, 2.367524, 2.358169, 2.350028], abs=1e-5
    )


def test_the_bounds_hold_alpha_by_simulation() -> None:
    """Under no effect, z at the looks is a Brownian motion over sqrt(t): 400 000 seeded paths
    cross the power-spending bounds about as often as the spending function allows, look by look
    (within 4 binomial standard errors)."""
    t = np.array([0.2, 0.45, 0.7, 1.0])
    bounds = np.array([b.z for b in group_sequential_bounds(list(t), 0.05)])
    rng = np.random.default_rng(20240611)
    paths = 400_000
    steps = rng.standard_normal((paths, t.size)) * np.sqrt(np.diff(t, prepend=0.0))
    z = np.cumsum(steps, axis=1) / np.sqrt(t)
    crossed = np.abs(z) >= bounds
    first = np.where(crossed.any(axis=1), crossed.argmax(axis=1), -1)
    spent = np.diff([spend_power(x, 0.05) for x in t], prepend=0.0)
    for k, expected in enumerate(spent):
        observed = np.mean(first == k)
        assert abs(observed - expected) < 4 * math.sqrt(expected * (1 - expected) / paths)


def test_one_look_is_the_fixed_sample_test() -> None:
    (only,) = group_sequential_bounds([1.0], 0.05)
    assert only.z == pytest.approx(1.959963984540054, abs=1e-9)
    assert only.alpha == pytest.approx(0.05, abs=1e-12)


def test_bad_information_is_refused_in_words() -> None:
    with pytest.raises(ValueError, match="increase"):
        group_sequential_bounds([0.5, 0.5, 1.0])
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        group_sequential_bounds([0.5, 1.2])
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        group_sequential_bounds([])
    with pytest.raises(ValueError, match="too close"):
        group_sequential_bounds([0.5, 0.5 + 1e-9, 1.0])


looks = st.lists(st.integers(1, 19), min_size=1, max_size=4, unique=True).map(
    lambda xs: [x / 20 for x in sorted(xs)] + [1.0]
)


@settings(max_examples=25, deadline=None)
@given(looks, st.sampled_from([spend_power, spend_obrien_fleming, spend_pocock]))
def test_more_looks_cost_a_stricter_last_bound(t: list[float], spending: Spending) -> None:
    """Each look's nominal alpha is at least what it spends, and the final bound is at least the
    fixed-sample one: peeking is paid for, never free."""
    bounds = group_sequential_bounds(t, 0.05, spending)
    spent = np.diff([spending(x, 0.05) for x in t], prepend=0.0)
    assert all(b.alpha >= s - 1e-9 for b, s in zip(bounds, spent, strict=True))
    assert bounds[-1].z >= 1.959963984540054 - 1e-9


@settings(max_examples=15, deadline=None)
@given(looks, st.floats(0.01, 0.1))
def test_a_larger_alpha_gives_lower_bounds(t: list[float], alpha: float) -> None:
    strict = group_sequential_bounds(t, alpha)
    loose = group_sequential_bounds(t, alpha * 1.5)
    assert all(a.z > b.z for a, b in zip(strict, loose, strict=True))


def test_sprt_thresholds() -> None:
    """F9 at alpha = 0.05, beta = 0.2: Wald's A = ln 16, B = ln(0.2/0.95)."""
    bounds = sprt_bounds(0.05, 0.2)
    assert bounds.reject == pytest.approx(2.772588722239781, rel=1e-15)
    assert bounds.accept == pytest.approx(-1.5581446180465497, rel=1e-15)


@pytest.mark.parametrize(
    ("z", "log_lr", "decision"),
    [  # theta = 0.1 / sqrt(2/800) = 2, so ln LR = 2|z| - 2 (worked by hand)
        (2.5, 3.0, "reject_null"),
        (-2.5, 3.0, "reject_null"),
        (1.0, 0.0, "continue"),
        (0.0, -2.0, "accept_null"),
    ],
)
def test_sprt_z_likelihood_ratio(z: float, log_lr: float, decision: str) -> None:
    got = sprt_z_log_likelihood_ratio(z, effect_size=0.1, n_a=800, n_b=800)
    assert got == pytest.approx(log_lr, abs=1e-12)
    assert sprt_decision(got, sprt_bounds(0.05, 0.2)) == decision


@given(st.floats(0, 8), st.floats(0, 8), st.floats(0.01, 1), st.integers(2, 10_000))
def test_the_sprt_ratio_grows_with_the_evidence(
    z1: float, z2: float, effect: float, n: int
) -> None:
    low, high = sorted((z1, z2))
    assert sprt_z_log_likelihood_ratio(low, effect, n, n) <= sprt_z_log_likelihood_ratio(
        high, effect, n, n
    )
    assert sprt_z_log_likelihood_ratio(-high, effect, n, n) == sprt_z_log_likelihood_ratio(
        high, effect, n, n
    )
