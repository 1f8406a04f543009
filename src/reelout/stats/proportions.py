"""Confidence intervals for the difference of two proportions p2 - p1 (arm 2 against arm 1, as
`compare.two_proportion_z`): Wald, and for small counts Agresti-Caffo, Newcombe's hybrid score
and the Miettinen-Nurminen score interval (spec F1, vector 4).

scipy has none of these; statsmodels has them but is not a dependency, and its score interval
is a variant that differs from R's PropCIs `diffscoreci` (the spec's reference) by up to 0.002.
So they are written out here: a few lines each, over scipy's normal and chi-square quantiles and
its root finder, with Newcombe's built on the Wilson interval of `compare`.
"""

from __future__ import annotations

import math

from scipy import stats as dist
from scipy.optimize import brentq

from reelout.stats.compare import wilson


def _check(successes: int, n: int) -> None:
    if n < 1 or not 0 <= successes <= n:
        raise ValueError("each arm needs at least one unit and 0 <= successes <= units")


def _wald(p1: float, n1: float, p2: float, n2: float, alpha: float) -> tuple[float, float]:
    z = float(dist.norm.isf(alpha / 2))
    half = z * math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
    return max(-1.0, p2 - p1 - half), min(1.0, p2 - p1 + half)


def wald_difference(x1: int, n1: int, x2: int, n2: int, alpha: float = 0.05) -> tuple[float, float]:
    """F1: (p2 - p1) +/- z sqrt(p1 q1/n1 + p2 q2/n2), clipped to [-1, 1]; poor for small counts."""
    _check(x1, n1)
    _check(x2, n2)
    return _wald(x1 / n1, n1, x2 / n2, n2, alpha)


def agresti_caffo(x1: int, n1: int, x2: int, n2: int, alpha: float = 0.05) -> tuple[float, float]:
    """The Wald interval after adding one success and one failure to each arm (Agresti and
    Caffo 2000): as simple as Wald, and close to nominal coverage with few units."""
    _check(x1, n1)
    _check(x2, n2)
    return _wald((x1 + 1) / (n1 + 2), n1 + 2, (x2 + 1) / (n2 + 2), n2 + 2, alpha)


def newcombe(x1: int, n1: int, x2: int, n2: int, alpha: float = 0.05) -> tuple[float, float]:
    """Newcombe's hybrid score interval (1998, method 10), from each arm's Wilson interval."""
    _check(x1, n1)
    _check(x2, n2)
    p1, p2 = x1 / n1, x2 / n2
    low1, high1 = wilson(x1, n1, alpha)
    low2, high2 = wilson(x2, n2, alpha)
    below = math.hypot(p2 - low2, high1 - p1)
    above = math.hypot(high2 - p2, p1 - low1)
    return p2 - p1 - below, p2 - p1 + above


def _restricted_rates(p_a: float, p_b: float, ratio: float, delta: float) -> tuple[float, float]:
    """The maximum-likelihood rates under p_a - p_b = delta, ratio = n_b/n_a (the
    Farrington-Manning cubic, solved in closed form)."""
    a = 1 + ratio
    b = -(1 + ratio + p_a + ratio * p_b + delta * (ratio + 2))
    c = delta * delta + delta * (2 * p_a + ratio + 1) + p_a + ratio * p_b
    d = -p_a * delta * (1 + delta)
    v = (b / (3 * a)) ** 3 - b * c / (6 * a * a) + d / (2 * a)
    u = math.copysign(math.sqrt(max(0.0, (b / (3 * a)) ** 2 - c / (3 * a))), v)
    cosine = 0.0 if u == 0 else max(-1.0, min(1.0, v / u**3))
    rate_a = 2 * u * math.cos((math.pi + math.acos(cosine)) / 3) - b / (3 * a)
    rate_a = max(0.0, min(1.0, rate_a))
    return rate_a, max(0.0, min(1.0, rate_a - delta))


def _score_statistic(x_a: int, n_a: int, x_b: int, n_b: int, delta: float) -> float:
    """Miettinen-Nurminen chi-square (1 df) of p_a - p_b = delta, with their N/(N - 1) factor."""
    p_a, p_b = x_a / n_a, x_b / n_b
    gap = p_a - p_b - delta
    if gap == 0:
        return 0.0
    rate_a, rate_b = _restricted_rates(p_a, p_b, n_b / n_a, delta)
    total = n_a + n_b
    variance = (rate_a * (1 - rate_a) / n_a + rate_b * (1 - rate_b) / n_b) * total / (total - 1)
    return math.inf if variance <= 0 else gap * gap / variance


def score_difference(
    x1: int, n1: int, x2: int, n2: int, alpha: float = 0.05
) -> tuple[float, float]:
    """The Miettinen-Nurminen score interval (1985): every difference the score test at level
    alpha does not reject, found by root finding on each side of the observed one."""
    _check(x1, n1)
    _check(x2, n2)
    critical = float(dist.chi2.isf(alpha, 1))
    observed = x2 / n2 - x1 / n1

    def excess(delta: float) -> float:
        return _score_statistic(x2, n2, x1, n1, delta) - critical

    edge = 1 - 1e-12
    lower = -1.0 if excess(-edge) <= 0 else brentq(excess, -edge, observed, xtol=1e-12)
    upper = 1.0 if excess(edge) <= 0 else brentq(excess, observed, edge, xtol=1e-12)
    return float(lower), float(upper)
