"""The anytime-valid confidence sequence (F6) keeps its coverage under repeated looks, by seeded
simulation; a fixed-horizon bound looked at after every batch does not (spec §4.4)."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
from scipy import stats

from reelout.stats.compare import (
    Estimate,
    difference,
    sequential,
    sequential_lower_bound,
    sidak,
    wilson,
)

LOOKS = 30
UNITS = 84  # new units per arm at each look: 2 x 30 x 84 = 5,040, near the default N* of 5,000

# One look: (errors in control, errors in treatment, units per arm) -> True when the rule says
# "the difference is above `truth`" (a rollback when truth is 0).
Rule = Callable[[int, int, int], bool]


def cumulative_errors(
    seed: int, runs: int, rate_control: float, rate_treatment: float, looks: int = LOOKS
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Errors so far per arm at each look (runs x looks) and the units per arm at each look."""
    rng = np.random.default_rng(seed)
    control = np.cumsum(rng.binomial(UNITS, rate_control, size=(runs, looks)), axis=1)
    treatment = np.cumsum(rng.binomial(UNITS, rate_treatment, size=(runs, looks)), axis=1)
    return control, treatment, UNITS * np.arange(1, looks + 1)


def runs_that_ever_fire(
    rule: Rule, control: np.ndarray, treatment: np.ndarray, units: np.ndarray
) -> int:
    """How many runs the rule fires on at any of their looks."""
    fired = 0
    for errors_c, errors_t in zip(control.tolist(), treatment.tolist(), strict=True):
        fired += any(
            rule(c, t, n) for c, t, n in zip(errors_c, errors_t, units.tolist(), strict=True)
        )
    return fired


def arms(c: int, t: int, n: int) -> tuple[Estimate, Estimate]:
    return Estimate.of_proportion(c, n), Estimate.of_proportion(t, n)


def sequence_above(truth: float, alpha: float) -> Rule:
    """The controller's rule: the one-sided anytime-valid lower bound is above `truth`."""
    return lambda c, t, n: sequential_lower_bound(*arms(c, t, n), alpha=alpha) > truth


def fixed_horizon_above(truth: float, alpha: float) -> Rule:
    """The broken rule: a one-sided fixed-horizon (Wald) lower bound, looked at every time."""
    z = float(stats.norm.ppf(1 - alpha))

    def rule(c: int, t: int, n: int) -> bool:
        effect, variance = difference(*arms(c, t, n), relative=False)
        return effect - z * math.sqrt(variance) > truth

    return rule


@pytest.mark.parametrize(
    ("rate_control", "rate_treatment", "alpha", "seed"),
    [
        (0.02, 0.02, 0.05, 1),  # A/A at the spec's error rate
        (0.02, 0.02, sidak(0.05, 5), 2),  # one of five guardrails
        (0.02, 0.03, 0.05, 3),  # a real regression: the bound must still sit below it
        (0.20, 0.25, 0.05, 4),  # a common event
    ],
    ids=["a-a", "a-a-one-of-five", "regression", "common-event"],
)
def test_the_one_sided_sequence_covers_the_truth_at_every_look(
    rate_control: float, rate_treatment: float, alpha: float, seed: int
) -> None:
    truth = rate_treatment - rate_control
    runs = 400
    control, treatment, units = cumulative_errors(seed, runs, rate_control, rate_treatment)
    missed = runs_that_ever_fire(sequence_above(truth, alpha), control, treatment, units)
    assert missed / runs <= alpha


@pytest.mark.parametrize(
    ("rate_control", "rate_treatment", "seed"),
    [(0.02, 0.02, 1), (0.02, 0.03, 3), (0.2, 0.25, 4)],
    ids=["a-a", "regression", "common-event"],
)
def test_a_fixed_horizon_bound_looked_at_every_time_does_not(
    rate_control: float, rate_treatment: float, seed: int
) -> None:
    """The same runs as above: the fixed-horizon bound misses the truth at some look in far more
    than alpha of them (the "peeking" problem the sequence exists for), while at the last look
    alone it misses about alpha."""
    truth, alpha, runs = rate_treatment - rate_control, 0.05, 400
    control, treatment, units = cumulative_errors(seed, runs, rate_control, rate_treatment)
    missed = runs_that_ever_fire(fixed_horizon_above(truth, alpha), control, treatment, units)
    assert wilson(missed, runs)[0] > 2 * alpha
    at_the_end = runs_that_ever_fire(
        fixed_horizon_above(truth, alpha), control[:, -1:], treatment[:, -1:], units[-1:]
    )
    assert wilson(at_the_end, runs)[0] <= alpha <= wilson(at_the_end, runs)[1]


def test_five_guardrails_at_the_sidak_alpha_keep_the_family_wise_rate() -> None:
    """A/A rollouts with five independent guardrails, each at alpha_k: a rollout rolls back when
    any of them proves harm, and that happens in at most alpha of them."""
    rollouts, guardrails, alpha = 300, 5, 0.05
    rule = sequence_above(0.0, sidak(alpha, guardrails))
    control, treatment, units = cumulative_errors(5, rollouts * guardrails, 0.02, 0.02)
    fired = [
        runs_that_ever_fire(rule, control[i : i + 1], treatment[i : i + 1], units) > 0
        for i in range(rollouts * guardrails)
    ]
    rolled_back = np.array(fired).reshape(rollouts, guardrails).any(axis=1).sum()
    assert rolled_back / rollouts <= alpha


def test_the_two_sided_sequence_covers_the_truth_at_every_look() -> None:
    truth, alpha, runs = 0.01, 0.05, 400
    control, treatment, units = cumulative_errors(6, runs, 0.02, 0.03)

    def misses(c: int, t: int, n: int) -> bool:
        got = sequential(*arms(c, t, n), alpha=alpha)
        return not got.lower <= truth <= got.upper

    assert runs_that_ever_fire(misses, control, treatment, units) / runs <= alpha


def test_the_sequence_still_rolls_back_a_real_regression() -> None:
    """Coverage alone would hold for a bound of minus infinity: a 2% -> 3% error rate is proven
    harmful within 120 looks (10,080 units per arm, 2.6x the fixed-horizon 3,823) in nearly
    every run."""
    runs = 200
    control, treatment, units = cumulative_errors(7, runs, 0.02, 0.03, looks=120)
    rolled_back = runs_that_ever_fire(sequence_above(0.0, 0.05), control, treatment, units)
    assert rolled_back / runs >= 0.95
