"""The chance that treatment beats control for a proportion, under Beta posteriors (spec F11).

Evan Miller's closed form for P(p_B > p_A) with an integer posterior alpha_B, summed in log
space with scipy's log-Beta; scipy offers the Beta distribution but not this probability.
"""

from __future__ import annotations

import math

from scipy.special import betaln


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
