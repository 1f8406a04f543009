"""Which rendition height a player should cap itself at, from what it knows about its network.

Pure. media_kit (libmpv) picks one variant at start and never switches, so the app asks once
and plays a master capped at the answer; players that adapt on their own (hls.js, ExoPlayer,
AVPlayer) can ignore it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

USABLE_SHARE = 0.7  # of a measured downlink a stream may plan on using (the rest is headroom)


class Network(StrEnum):
    wifi = "wifi"
    cellular = "cellular"
    slow = "slow"


# Short-side caps when all the app knows is the kind of network.
NETWORK_CAPS = {Network.wifi: None, Network.cellular: 720, Network.slow: 360}


@dataclass(frozen=True)
class Option:
    short_side: int  # the rendition's short side ("720" for 720p, portrait or not)
    bandwidth: int  # declared peak bits per second


def recommended_max_height(
    options: Sequence[Option], network: Network | None, downlink_kbps: float | None
) -> int | None:
    """The short side to cap at: the largest rendition that fits both the measured downlink
    (at USABLE_SHARE of it) and the network kind's cap; never below the smallest rendition.
    None when there is nothing to choose from."""
    if not options:
        return None
    ordered = sorted(options, key=lambda o: o.short_side)
    fitting = [o for o in ordered if _fits(o, network, downlink_kbps)]
    return (fitting[-1] if fitting else ordered[0]).short_side


def _fits(option: Option, network: Network | None, downlink_kbps: float | None) -> bool:
    cap = NETWORK_CAPS.get(network) if network is not None else None
    if cap is not None and option.short_side > cap:
        return False
    return downlink_kbps is None or option.bandwidth <= downlink_kbps * 1000 * USABLE_SHARE
