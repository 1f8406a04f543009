"""The chance that treatment beats control: exactly for a proportion under Beta posteriors
(spec F11), and for any metric under gbstats' Gaussian approximation (vector 18).

Evan Miller's closed form for P(p_B > p_A) with an integer posterior alpha_B, summed in log
space with scipy's log-Beta; scipy offers the Beta distribution but not this probability. The
Gaussian comparison is scipy's normal distribution over `compare.difference`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import stats as dist
from scipy.special import betaln

from reelout.stats.compare import Estimate, difference


def chance_to_beat(alpha_a: float, beta_a: float, alpha_b: int, beta_b: float) -> float:
    """P(p_B > p_A) for p_A ~ Beta(alpha_a, beta_a) and p_B ~ Beta(alpha_b, beta_b)."""
    if alpha_b < 1 or int(alpha_b) != alpha_b:
        raise ValueError("alpha_b must be a positive integer (successes + a whole prior)")
    base = betaln(alpha_a, beta_a)
    total = 0.0
    for i in range(int(alpha_b)):
        total += math.exp(
            betaln(alpha_a + i, beta_a + beta_b)
            - math.log(beta_b + i)
            - betaln(1 + i, beta_b)
            - base
        )
    return total


def chance_to_beat_counts(
    successes_a: int, n_a: int, successes_b: int, n_b: int, prior: tuple[int, int] = (1, 1)
) -> float:
    """P(p_B > p_A) from counts and a Beta(prior) on both arms (uniform by default)."""
    a0, b0 = prior
    return chance_to_beat(
        a0 + successes_a, b0 + n_a - successes_a, a0 + successes_b, b0 + n_b - successes_b
    )


@dataclass(frozen=True)
class GaussianComparison:
    """The effect's posterior mean, its central credible interval, and P(effect > 0)."""

    effect: float
    lower: float
    upper: float
    chance_to_win: float


def gaussian_chance_to_win(
    control: Estimate, treatment: Estimate, *, relative: bool = False, alpha: float = 0.05
) -> GaussianComparison:
    """gbstats' Bayesian engine with its default flat prior: the effect (absolute, or relative to
    |control|) is normal with the F4 delta-method variance. For a lower-is-better metric the
    chance that treatment is better is 1 - chance_to_win."""
    effect, variance = difference(control, treatment, relative)
    sd = math.sqrt(variance)
    if sd == 0:
        return GaussianComparison(effect, effect, effect, 0.5 if effect == 0 else float(effect > 0))
    z = float(dist.norm.isf(alpha / 2))
    return GaussianComparison(
        effect, effect - z * sd, effect + z * sd, float(dist.norm.cdf(effect / sd))
    )
