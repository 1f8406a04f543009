"""Rank statistics for skewed per-view metrics (startup time): Mann-Whitney U and the
Hodges-Lehmann shift, as diagnostics next to the confidence sequence (spec F10).

The U test is scipy's (asymptotic, tie-corrected, with or without continuity correction, as R's
`wilcox.test(exact = FALSE)`); only the Hodges-Lehmann estimate, the median of the pairwise
differences, is written here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as dist


@dataclass(frozen=True)
class RankComparison:
    """U of the first sample, its two-sided p-value, and the Hodges-Lehmann shift x - y."""

    u: float
    p_value: float
    shift: float


def mann_whitney(
    x: Sequence[float], y: Sequence[float], *, continuity: bool = True
) -> RankComparison:
    """F10: Mann-Whitney U of `x` against `y` (normal approximation with ties) and the median
    of all pairwise differences x_i - y_j."""
    result = dist.mannwhitneyu(
        x, y, use_continuity=continuity, alternative="two-sided", method="asymptotic"
    )
    differences = np.subtract.outer(np.asarray(x, float), np.asarray(y, float))
    return RankComparison(
        float(result.statistic), float(result.pvalue), float(np.median(differences))
    )
