"""Rank statistics for skewed per-view metrics (startup time): Mann-Whitney U, the
Hodges-Lehmann shift and its confidence interval, as diagnostics next to the confidence
sequence (spec F10).

The U test is scipy's (asymptotic, tie-corrected, with or without continuity correction, as R's
`wilcox.test(exact = FALSE)`). scipy has no Hodges-Lehmann estimate or interval, so both are
written here: the estimate is the median of the pairwise differences; the interval is the pair
of pairwise differences where R's asymptotic test (ties, continuity correction) stops
rejecting. R finds those with `uniroot` on a step function, to within its 1e-4 tolerance; here
they are read off the sorted differences at ranks from the normal quantile, exactly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import stats as dist


@dataclass(frozen=True)
class RankComparison:
    """U of the first sample, its two-sided p-value, and the Hodges-Lehmann shift x - y."""

    u: float
    p_value: float
    shift: float


def _differences(x: Sequence[float], y: Sequence[float]) -> NDArray[np.float64]:
    """All m*n pairwise differences x_i - y_j, flattened."""
    differences: NDArray[np.float64] = np.subtract.outer(
        np.asarray(x, float), np.asarray(y, float)
    ).ravel()
    return differences


def mann_whitney(
    x: Sequence[float], y: Sequence[float], *, continuity: bool = True
) -> RankComparison:
    """F10: Mann-Whitney U of `x` against `y` (normal approximation with ties) and the median
    of all pairwise differences x_i - y_j."""
    result = dist.mannwhitneyu(
        x, y, use_continuity=continuity, alternative="two-sided", method="asymptotic"
    )
    return RankComparison(
        float(result.statistic), float(result.pvalue), float(np.median(_differences(x, y)))
    )


def _u_sd(x: Sequence[float], y: Sequence[float]) -> float:
    """The sd of U at a shift d where x - d and y share no value, so only ties within a sample
    count (never 0: the samples cannot be one tie group there)."""
    m, n = len(x), len(y)
    total = m + n
    ties = sum(
        float(np.sum(counts**3 - counts))
        for counts in (np.unique(sample, return_counts=True)[1] for sample in (x, y))
    )
    return math.sqrt(m * n / 12 * ((total + 1) - ties / (total * (total - 1))))


def shift_interval(
    x: Sequence[float], y: Sequence[float], *, alpha: float = 0.05
) -> tuple[float, float]:
    """The confidence interval of the Hodges-Lehmann shift x - y: the shifts d the two-sided
    continuity-corrected U test of x - d against y does not reject at `alpha`.

    For d between pairwise differences U(d) counts the differences above d, so the test stops
    rejecting at the difference of rank mn - K (from below) and K + 1 (from above), with
    K = floor(mn/2 + 1/2 + z sd(U)); beyond the extremes it is the extremes, as in R.
    """
    if len(x) < 1 or len(y) < 1:
        raise ValueError("a shift interval needs a value in each sample")
    differences = np.sort(_differences(x, y))
    pairs = differences.size
    k = math.floor(pairs / 2 + 0.5 + float(dist.norm.isf(alpha / 2)) * _u_sd(x, y))
    lower_rank = min(max(pairs - k, 1), pairs)
    upper_rank = min(max(k + 1, 1), pairs)
    return float(differences[lower_rank - 1]), float(differences[upper_rank - 1])
