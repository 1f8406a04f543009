"""Stopping rules planned before the data: group-sequential bounds from an alpha-spending
function (spec F8, Lan-DeMets) and Wald's sequential probability ratio test (spec F9).

The bounds are hand-written over scipy's normal distribution, root finder and Simpson rule. The
spec's suggestion, scipy's `multivariate_normal.cdf` with `lower_limit`, gives the right bounds but
is a randomised quasi-Monte-Carlo integral: the crossing probabilities must be good to about 1e-7
to pin a bound to 1e-4, and at that accuracy it takes about a minute for four looks. The z
statistics at the looks are a Brownian motion seen at the information times, so the probability
of crossing at look k is one integral over the density of not having crossed before it, carried
from look to look on a grid (Armitage, McPherson and Rowe 1969; what gsDesign and ldbounds do):
deterministic, and milliseconds. No library on the project's dependencies offers it.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from scipy import stats as dist
from scipy.integrate import simpson
from scipy.optimize import brentq

Spending = Callable[[float, float], float]
"""An alpha-spending function: (information fraction t in (0, 1], total alpha) -> alpha spent by t."""

GRID_STEP = 0.1  # grid spacing in units of the narrower of a look's sd and the next increment's
MIN_POINTS = 201  # grid points per look at least (odd, for Simpson's rule)
MAX_POINTS = 20_001  # looks closer than this grid can resolve are refused
LOWER_TAIL_SD = 10.0  # an open side of the continuation region is cut this many sd from 0


def spend_power(t: float, alpha: float, rho: float = 2.0) -> float:
    """The power family alpha * t^rho (Spotify's default, rho = 2)."""
    return alpha * float(t**rho)


def spend_obrien_fleming(t: float, alpha: float) -> float:
    """Lan-DeMets O'Brien-Fleming type: 2 - 2 Phi(z_{1-alpha/2} / sqrt(t)); spends almost
    nothing early."""
    return float(2 * dist.norm.sf(dist.norm.isf(alpha / 2) / math.sqrt(t)))


def spend_pocock(t: float, alpha: float) -> float:
    """Lan-DeMets Pocock type: alpha * ln(1 + (e - 1) t); spends evenly."""
    return alpha * math.log(1 + (math.e - 1) * t)


@dataclass(frozen=True)
class Bound:
    """One look's critical |z| (or z, one-sided) and the nominal alpha it amounts to."""

    z: float
    alpha: float


def information_fractions(looks: Sequence[float], planned_total: float) -> list[float]:
    """Each look's sample over the planned total; when the sample runs over the plan, over the
    last look instead (Spotify's rule), so the last look spends all of alpha."""
    total = max(planned_total, looks[-1])
    return [n / total for n in looks]


def group_sequential_bounds(
    information: Sequence[float],
    alpha: float = 0.05,
    spending: Spending = spend_power,
    *,
    two_sided: bool = True,
) -> list[Bound]:
    """F8: the critical values c_k at increasing information fractions t_k in (0, 1] so that the
    chance of first crossing at look k under no effect is alpha(t_k) - alpha(t_(k-1))."""
    _check_information(information)
    bounds: list[Bound] = []
    state: tuple[NDArray[np.float64], NDArray[np.float64]] | None = None
    spent, previous = 0.0, 0.0
    for k, t in enumerate(information):
        target = spending(t, alpha) - spent
        step_sd = math.sqrt(t - previous)
        c = _solve_bound(state, t, step_sd, target, two_sided)
        tail = dist.norm.sf(c)
        bounds.append(Bound(c, float(2 * tail if two_sided else tail)))
        following = information[k + 1] if k + 1 < len(information) else None
        state = _carry(state, t, step_sd, c, following, two_sided)
        spent, previous = spent + max(target, 0.0), t
    return bounds


def _check_information(information: Sequence[float]) -> None:
    if not information or any(not 0 < t <= 1 for t in information):
        raise ValueError("information fractions must lie in (0, 1]")
    if any(b <= a for a, b in itertools.pairwise(information)):
        raise ValueError("information fractions must increase from look to look")


def _crossing(
    state: tuple[NDArray[np.float64], NDArray[np.float64]] | None,
    t: float,
    step_sd: float,
    c: float,
    two_sided: bool,
) -> float:
    """P(no crossing before this look, crossing at it) for the bound c at information t."""
    sides = 2 if two_sided else 1
    if state is None:
        return float(sides * dist.norm.sf(c))
    grid, density = state
    edge = c * math.sqrt(t)
    beyond = dist.norm.sf((edge - grid) / step_sd)
    if two_sided:
        beyond = beyond + dist.norm.cdf((-edge - grid) / step_sd)
    return float(simpson(density * beyond, x=grid))


def _solve_bound(
    state: tuple[NDArray[np.float64], NDArray[np.float64]] | None,
    t: float,
    step_sd: float,
    target: float,
    two_sided: bool,
) -> float:
    if target <= 0:  # nothing left to spend at this look: it cannot stop
        return math.inf
    return float(
        brentq(lambda c: _crossing(state, t, step_sd, c, two_sided) - target, 0.0, 40.0, xtol=1e-12)
    )


def _carry(
    state: tuple[NDArray[np.float64], NDArray[np.float64]] | None,
    t: float,
    step_sd: float,
    c: float,
    following: float | None,
    two_sided: bool,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The density of S_k = Z_k sqrt(t_k) over the region where the test has not stopped yet."""
    sd = math.sqrt(t)
    top = c * sd if math.isfinite(c) else LOWER_TAIL_SD * sd
    bottom = -top if two_sided else -LOWER_TAIL_SD * sd
    next_sd = math.sqrt(following - t) if following is not None else sd
    points = math.ceil((top - bottom) / (GRID_STEP * min(sd, next_sd)))
    if points > MAX_POINTS:
        raise ValueError("two looks are too close in information to compute the bounds")
    grid = np.linspace(bottom, top, max(MIN_POINTS, points | 1))
    if state is None:
        return grid, dist.norm.pdf(grid / step_sd) / step_sd
    previous, density = state
    kernel = dist.norm.pdf((grid[:, None] - previous[None, :]) / step_sd) / step_sd
    return grid, simpson(kernel * density[None, :], x=previous, axis=1)


@dataclass(frozen=True)
class SprtBounds:
    """Wald's thresholds on the log-likelihood ratio: at or below `accept` the test stops for
    "no effect of the planned size", at or above `reject` for "effect"."""

    accept: float
    reject: float


SprtDecision = Literal["reject_null", "accept_null", "continue"]


def sprt_bounds(alpha: float = 0.05, beta: float = 0.2) -> SprtBounds:
    """F9: A = ln((1 - beta)/alpha) and B = ln(beta/(1 - alpha))."""
    return SprtBounds(math.log(beta / (1 - alpha)), math.log((1 - beta) / alpha))


def sprt_z_log_likelihood_ratio(z: float, effect_size: float, n_a: int, n_b: int) -> float:
    """F9, Statsig's SPRT-z: ln[phi(|z|; theta, 1) / phi(|z|; 0, 1)] with theta the planned
    effect (Cohen's d) in z units, d / sqrt(1/n_A + 1/n_B)."""
    theta = effect_size / math.sqrt(1 / n_a + 1 / n_b)
    return float(dist.norm.logpdf(abs(z), loc=theta) - dist.norm.logpdf(abs(z)))


def sprt_decision(log_likelihood_ratio: float, bounds: SprtBounds) -> SprtDecision:
    """Stop for an effect, stop for none, or keep collecting."""
    if log_likelihood_ratio >= bounds.reject:
        return "reject_null"
    if log_likelihood_ratio <= bounds.accept:
        return "accept_null"
    return "continue"
