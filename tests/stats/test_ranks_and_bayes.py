"""Rank statistics, Bayesian chance to beat and k proportions, against the spec's vectors."""

from __future__ import annotations

import pytest

from reelout.stats.bayes import chance_to_beat, chance_to_beat_counts
from reelout.stats.compare import proportions_chi2
from reelout.stats.ranks import mann_whitney

X = (0.80, 0.83, 1.89, 1.04, 1.45, 1.38, 1.91, 1.64, 0.73, 1.46)
Y = (1.15, 0.88, 0.90, 0.74, 1.21)


def test_mann_whitney_matches_r() -> None:  # vector 15 (scipy test_gh_9184, R wilcox.test)
    corrected = mann_whitney(X, Y)
    assert corrected.u == 35
    assert corrected.p_value == pytest.approx(0.244623605127, rel=1e-9)
    assert mann_whitney(X, Y, continuity=False).p_value == pytest.approx(0.2206713619198, rel=1e-9)


def test_hodges_lehmann_shift() -> None:  # vector 16 (kayenta)
    assert mann_whitney([10, 20, 30, 40], [1, 2, 3, 4]).shift == 22.5


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [  # vector 17 (ankane/field_test)
        ((1, 2), (3, 4), 0.6428571428571429),
        ((55, 50), (30, 30), 0.38386463776317903),
        ((50, 50), (35, 30), 0.6867997222295887),
    ],
)
def test_chance_to_beat(a: tuple[int, int], b: tuple[int, int], expected: float) -> None:
    assert chance_to_beat(a[0], a[1], b[0], b[1]) == pytest.approx(expected, rel=1e-12)


def test_chance_to_beat_is_a_probability_and_symmetric() -> None:
    one = chance_to_beat_counts(40, 100, 50, 100)
    other = chance_to_beat_counts(50, 100, 40, 100)
    assert 0.5 < one < 1 and one + other == pytest.approx(1, abs=1e-9)
    with pytest.raises(ValueError, match="positive integer"):
        chance_to_beat(1, 1, 0, 1)


def test_k_proportions() -> None:  # vector 3 (statsmodels res_prop_test)
    chi2, p = proportions_chi2([73, 90, 114, 75], [86, 93, 136, 82])
    assert chi2 == pytest.approx(11.11938768628861, rel=1e-9)
    assert p == pytest.approx(0.011097511366581344, rel=1e-9)
