"""Choosing the height cap for a player that cannot switch renditions by itself."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reelout.media.recommend import Network, Option, recommended_max_height

LADDER = [
    Option(240, 500_000),
    Option(360, 950_000),
    Option(480, 1_600_000),
    Option(720, 3_000_000),
    Option(1080, 5_400_000),
]


@pytest.mark.parametrize(
    ("network", "downlink", "cap"),
    [
        (None, None, 1080),
        (Network.wifi, None, 1080),
        (Network.cellular, None, 720),
        (Network.slow, None, 360),
        (Network.wifi, 4_300, 720),  # 0.7 x 4.3 Mbit/s = 3.01 Mbit/s: 720p (3.0) fits
        (Network.wifi, 4_280, 480),  # 2.996 Mbit/s: just short of 720p
        (Network.cellular, 100_000, 720),  # a fast cellular link keeps the network cap
        (None, 50, 240),  # nothing fits: the smallest rendition, never none
    ],
)
def test_the_cap_fits_network_and_downlink(
    network: Network | None, downlink: float | None, cap: int
) -> None:
    assert recommended_max_height(LADDER, network, downlink) == cap


def test_no_renditions_no_recommendation() -> None:
    assert recommended_max_height([], Network.wifi, 1000) is None


@given(st.floats(min_value=1, max_value=1e6), st.floats(min_value=1, max_value=1e6))
def test_more_bandwidth_never_lowers_the_cap(a: float, b: float) -> None:
    low, high = sorted((a, b))
    assert recommended_max_height(LADDER, None, low) <= recommended_max_height(LADDER, None, high)  # type: ignore[operator]
