"""Fixed-horizon and anytime-valid comparisons of two arms, from per-arm sufficient statistics.

The formulas are those of the spec (`rollouts-kpis-alerts.md` §1.1, F1-F6, F12, F13), written
here over numpy/scipy distributions: no maintained library takes the per-arm sums a rollup keeps
(n, Σx, Σx²; for ratios Σm, Σd, Σm², Σd², Σmd) and returns both the fixed-horizon and the
asymptotic confidence-sequence answer with gbstats' conventions, so the formulas are written out
and pinned to the outside reference vectors in the tests. No I/O, no database, no web framework.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

DEFAULT_N_STAR = 5000  # total units at which a confidence sequence is tightest (gbstats default)


def _dist() -> Any:
    """scipy.stats, imported on first use: importing it takes about a second, which every
    `reelout serve` worker and CLI command would otherwise pay at start-up (this module is
    imported by the KPIs, which the runtime wires in)."""
    from scipy import stats

    return stats


@dataclass(frozen=True)
class Moments:
    """One arm's unit-level sufficient statistics: n units, Σx and Σx²."""

    n: int
    total: float
    squares: float

    @classmethod
    def of_proportion(cls, successes: int, n: int) -> Moments:
        """A 0/1 metric: Σx = Σx² = successes."""
        return cls(n, float(successes), float(successes))

    @property
    def mean(self) -> float:
        return self.total / self.n

    @property
    def variance(self) -> float:
        """Sample variance (n - 1 in the denominator)."""
        if self.n < 2:
            return 0.0
        return max(0.0, (self.squares - self.total**2 / self.n) / (self.n - 1))


@dataclass(frozen=True)
class RatioMoments:
    """One arm's sums for a ratio metric Σm/Σd over n units (e.g. stall ms / watch ms)."""

    n: int
    m: float
    d: float
    m2: float
    d2: float
    md: float


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its standard error and the mean/variance/n it came from."""

    mean: float
    variance: float
    n: int

    @classmethod
    def of_proportion(cls, successes: int, n: int) -> Estimate:
        """A rate with the proportion's variance p(1 - p) (gbstats' convention for 0/1 units)."""
        p = successes / n
        return cls(p, p * (1 - p), n)


@dataclass(frozen=True)
class Comparison:
    """Treatment - control (absolute) or (treatment - control)/|control| (relative)."""

    effect: float
    se: float
    lower: float
    upper: float
    p_value: float


def wilson(successes: int, n: int, alpha: float = 0.05) -> tuple[float, float]:
    """F2: Wilson score interval for a proportion; (0, 1) without data."""
    if n == 0:
        return 0.0, 1.0
    z = float(_dist().norm.ppf(1 - alpha / 2))
    p = successes / n
    scale = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / scale
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / scale
    low = 0.0 if successes == 0 else max(0.0, centre - half)  # exactly 0 and 1 at the edges,
    high = 1.0 if successes == n else min(1.0, centre + half)  # not a rounding error away
    return low, high


def two_proportion_z(x1: int, n1: int, x2: int, n2: int) -> tuple[float, float]:
    """F1: pooled two-proportion z-test of arm 2 against arm 1: (z, two-sided p)."""
    pooled = (x1 + x2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return 0.0, 1.0
    z = (x2 / n2 - x1 / n1) / se
    return z, float(2 * _dist().norm.sf(abs(z)))


def srm_p_value(observed: Sequence[int], weights: Sequence[float]) -> float:
    """F3: sample-ratio-mismatch χ² p-value over the arms with a positive weight (1 without
    data or with fewer than two such arms)."""
    arms = [(o, w) for o, w in zip(observed, weights, strict=True) if w > 0]
    total, weight = sum(o for o, _ in arms), sum(w for _, w in arms)
    if total == 0 or len(arms) < 2:
        return 1.0
    chi2 = sum((o - w / weight * total) ** 2 / (w / weight * total) for o, w in arms)
    return float(_dist().chi2.sf(chi2, len(arms) - 1))


def proportions_chi2(successes: Sequence[int], totals: Sequence[int]) -> tuple[float, float]:
    """Pearson chi-square that k proportions are equal (no continuity correction): (chi2, p)."""
    expected = sum(successes) / sum(totals)
    chi2 = 0.0
    for x, n in zip(successes, totals, strict=True):
        for observed, share in ((x, expected), (n - x, 1 - expected)):
            chi2 += (observed - share * n) ** 2 / (share * n)
    return chi2, float(_dist().chi2.sf(chi2, len(totals) - 1))


def ratio_estimate(arm: RatioMoments) -> Estimate:
    """F5: a ratio metric's R = Σm/Σd with its delta-method variance, as (R, n·Var(R̂), n)."""
    n = arm.n
    if n < 1 or arm.d == 0:
        raise ValueError("a ratio needs at least one unit and a denominator other than 0")
    if n < 2:  # one unit: a value, no spread yet
        return Estimate(arm.m / arm.d, 0.0, n)
    m_bar, d_bar = arm.m / n, arm.d / n
    s_m2 = (arm.m2 - arm.m**2 / n) / (n - 1)
    s_d2 = (arm.d2 - arm.d**2 / n) / (n - 1)
    s_md = (arm.md - arm.m * arm.d / n) / (n - 1)
    var_r = (s_m2 / d_bar**2 + s_d2 * m_bar**2 / d_bar**4 - 2 * s_md * m_bar / d_bar**3) / n
    return Estimate(arm.m / arm.d, max(0.0, var_r * n), n)


def moments_estimate(arm: Moments) -> Estimate:
    return Estimate(arm.mean, arm.variance, arm.n)


def difference(control: Estimate, treatment: Estimate, relative: bool) -> tuple[float, float]:
    """F4: treatment - control (or its change relative to |control|) and that effect's variance
    (Welch; delta method for the relative change)."""
    a, b = control, treatment
    if not relative:
        return b.mean - a.mean, b.variance / b.n + a.variance / a.n
    if a.mean == 0:
        raise ValueError("a relative change needs a control mean other than 0")
    effect = (b.mean - a.mean) / abs(a.mean)
    variance = b.variance / (b.n * a.mean**2) + a.variance * b.mean**2 / (a.n * a.mean**4)
    return effect, variance


def _welch_dof(control: Estimate, treatment: Estimate) -> float:
    a, b = control, treatment
    va, vb = a.variance / a.n, b.variance / b.n
    denominator = vb**2 / (b.n - 1) + va**2 / (a.n - 1)
    return (va + vb) ** 2 / denominator if denominator > 0 else math.inf


def welch(
    control: Estimate, treatment: Estimate, *, relative: bool = False, alpha: float = 0.05
) -> Comparison:
    """F4: fixed-horizon Welch t comparison, two-sided interval and p-value."""
    effect, variance = difference(control, treatment, relative)
    se = math.sqrt(variance)
    dof = _welch_dof(control, treatment)
    t = float(_dist().t.ppf(1 - alpha / 2, dof))
    p = float(2 * _dist().t.sf(abs(effect / se), dof)) if se > 0 else 1.0
    return Comparison(effect, se, effect - t * se, effect + t * se, p)


def _rho(alpha: float, n_star: int) -> float:
    return math.sqrt((-2 * math.log(alpha) + math.log(-2 * math.log(alpha) + 1)) / n_star)


def sequential(
    control: Estimate,
    treatment: Estimate,
    *,
    relative: bool = False,
    alpha: float = 0.05,
    n_star: int = DEFAULT_N_STAR,
) -> Comparison:
    """F6: the asymptotic confidence sequence (two-sided), valid at every look, with its
    always-valid p-value (= 1/E, E the mSPRT statistic of F7 with tau^2 = rho^2V)."""
    effect, variance = difference(control, treatment, relative)
    n = control.n + treatment.n
    s2 = variance * n
    rho = _rho(alpha, n_star)
    nr = n * rho * rho
    half = math.sqrt(s2) * math.sqrt(2 * (nr + 1) / (n * nr) * math.log(math.sqrt(nr + 1) / alpha))
    p = 1.0
    if variance > 0:  # p = min(1, 1/E), computed from log E so a huge E cannot overflow
        evidence = effect * effect * n / variance
        log_e = rho * rho * evidence / (2 * (nr + 1)) - 0.5 * math.log(nr + 1)
        p = math.exp(-log_e) if log_e > 0 else 1.0
    return Comparison(effect, math.sqrt(variance), effect - half, effect + half, p)


def _one_sided_halfwidth(variance: float, n: int, alpha: float, n_star: int) -> float:
    """F6, one-sided: the confidence sequence's halfwidth for an effect of this variance after
    n units in all (rho from 2*alpha)."""
    rho = _rho(2 * alpha, n_star)
    nr = n * rho * rho
    s2 = variance * n
    return math.sqrt(s2 * 2 * (nr + 1) / (n * nr) * math.log(1 + math.sqrt(nr + 1) / (2 * alpha)))


def sequential_lower_bound(
    control: Estimate,
    treatment: Estimate,
    *,
    relative: bool = False,
    alpha: float = 0.05,
    n_star: int = DEFAULT_N_STAR,
) -> float:
    """F6, one-sided: a lower bound on treatment - control valid at every look (rho from 2*alpha)."""
    effect, variance = difference(control, treatment, relative)
    return effect - _one_sided_halfwidth(variance, control.n + treatment.n, alpha, n_star)


def sequential_upper_bound(
    control: Estimate,
    treatment: Estimate,
    *,
    relative: bool = False,
    alpha: float = 0.05,
    n_star: int = DEFAULT_N_STAR,
) -> float:
    """F6, one-sided the other way: an upper bound on treatment - control (or its change
    relative to |control|) valid at every look. A harm that is control - treatment relative to
    the control (a higher-is-better metric) has minus this as its lower bound, which swapping
    the arms of `sequential_lower_bound` would not give (it would divide by the treatment)."""
    effect, variance = difference(control, treatment, relative)
    return effect + _one_sided_halfwidth(variance, control.n + treatment.n, alpha, n_star)


def normal_bounds(estimate: Estimate, alpha: float = 0.05) -> tuple[float, float]:
    """One arm's mean with one-sided bounds at `alpha` each (together a 1 - 2*alpha interval):
    mean -/+ z * sqrt(variance / n), the fixed-horizon normal bound of a ratio or a mean."""
    z = float(_dist().norm.ppf(1 - alpha))
    half = z * math.sqrt(estimate.variance / estimate.n) if estimate.n > 0 else math.inf
    return estimate.mean - half, estimate.mean + half


def sample_size_per_arm(p1: float, p2: float, alpha: float = 0.05, power: float = 0.8) -> int:
    """F12: units per arm to tell p1 from p2 with a two-sided test at `alpha` and `power`."""
    z = float(_dist().norm.ppf(1 - alpha / 2) + _dist().norm.ppf(power))
    return math.ceil(z * z * (p1 * (1 - p1) + p2 * (1 - p2)) / (p2 - p1) ** 2)


def sidak(alpha: float, tests: int) -> float:
    """F13: the per-test alpha that keeps the family-wise error at `alpha` over `tests` tests
    (`alpha` itself, exactly, for one test)."""
    if tests == 1:
        return alpha
    return float(1 - (1 - alpha) ** (1 / tests))
