"""What units' facts say, folded from events in the pure layer: the viewer's mean of log
startup ms, a view's cache bytes, and a viewer's exposure to an arm (its events, its anchor,
its rows)."""

from __future__ import annotations

import math
from typing import Any

import pytest

from reelout.telemetry.facts import (
    MAX_ARMS,
    MAX_VIEWS_PER_VIEWER,
    Seen,
    Unit,
    attribution,
    exposure_unit,
    facts,
    fold,
    units,
)
from reelout.telemetry.metrics import METRICS
from reelout.telemetry.sums import RowKey, change, contributions


def seen(type_: str, at_ms: int, view_id: str | None = "w1", **fields: Any) -> Seen:
    body = {"event_id": f"{type_}-{at_ms}-{view_id}", "type": type_, "viewer_id": "v"}
    return Seen({**body, "view_id": view_id, **fields}, at_ms)


def started(view_id: str, at_ms: int, startup_ms: int) -> list[Seen]:
    return [
        seen("play_request", at_ms, view_id),
        seen("playing", at_ms + startup_ms, view_id),
    ]


def test_a_viewer_s_log_startup_is_the_mean_of_its_views_logs() -> None:
    events = started("w1", 0, 1000) + started("w2", 50_000, 4000)
    found = facts("viewer", fold("viewer", {}, events))
    assert found["log_startup_ms"] == pytest.approx((math.log(1000) + math.log(4000)) / 2)
    assert METRICS["video_startup_log_ms"].contribution(found) == (found["log_startup_ms"], 1.0)


def test_the_order_and_chunking_of_a_viewer_s_events_do_not_matter() -> None:
    events = started("w1", 0, 1500) + started("w2", 9000, 700)
    whole = facts("viewer", fold("viewer", {}, events))
    backwards = fold("viewer", fold("viewer", {}, events[2:][::-1]), events[:2][::-1])
    assert facts("viewer", backwards)["log_startup_ms"] == pytest.approx(whole["log_startup_ms"])


def test_views_without_a_startup_do_not_count_in_the_viewer_s_mean() -> None:
    never_played = [seen("play_request", 0, "w1"), seen("view_end", 900, "w1", reason="user_exit")]
    no_intent = [seen("heartbeat", 10, "w2", watch_ms=5000, startup_ms=100)]
    found = facts("viewer", fold("viewer", {}, never_played + no_intent))
    assert "log_startup_ms" not in found
    assert METRICS["video_startup_log_ms"].contribution(found) is None
    played = started("w3", 20_000, 2000)
    found = facts("viewer", fold("viewer", {}, never_played + no_intent + played))
    assert found["log_startup_ms"] == pytest.approx(math.log(2000))


def test_a_reported_startup_serves_when_the_clock_has_no_playing() -> None:
    events = [seen("play_request", 0), seen("heartbeat", 10_000, watch_ms=9000, startup_ms=800)]
    found = facts("viewer", fold("viewer", {}, events))
    assert found["log_startup_ms"] == pytest.approx(math.log(800))


def test_an_instant_start_counts_as_one_millisecond() -> None:
    found = facts("viewer", fold("viewer", {}, started("w1", 5000, 0)))
    assert found["log_startup_ms"] == 0.0


def test_a_viewer_remembers_a_bounded_number_of_views() -> None:
    events = [e for i in range(MAX_VIEWS_PER_VIEWER + 5) for e in started(f"w{i}", i, 10)]
    state = fold("viewer", {}, events)
    assert len(state["startups"]) == MAX_VIEWS_PER_VIEWER
    assert facts("viewer", state)["log_startup_ms"] == pytest.approx(math.log(10))


def test_a_view_s_cache_bytes_add_up_and_its_network_counter_is_the_highest() -> None:
    events = [
        seen("play_request", 0),
        seen("playing", 500),
        seen("cache_hit", 600, bytes=3000),
        seen("heartbeat", 10_500, watch_ms=10_000, network_bytes=5000),
        seen("cache_hit", 11_000, bytes=2000),
        seen("heartbeat", 10_400, watch_ms=9_900, network_bytes=4000),  # an older beat, late
    ]
    found = facts("view", fold("view", {}, events))
    assert (found["cache_hit_bytes"], found["delivered_bytes"]) == (5000.0, 10_000.0)
    assert METRICS["cache_hit_ratio"].contribution(found) == (5000.0, 10_000.0)


def test_a_view_without_the_network_counter_has_no_cache_share() -> None:
    events = [seen("play_request", 0), seen("playing", 500), seen("cache_hit", 600, bytes=3000)]
    found = facts("view", fold("view", {}, events))
    assert "delivered_bytes" not in found
    assert METRICS["cache_hit_ratio"].contribution(found) is None


def test_a_view_from_the_network_alone_counts_with_no_hit() -> None:
    events = [seen("play_request", 0), seen("view_end", 9000, reason="completed", watch_ms=8000,
                                                network_bytes=7000)]  # fmt: skip
    found = facts("view", fold("view", {}, events))
    assert METRICS["cache_hit_ratio"].contribution(found) == (0.0, 7000.0)


# ---- a viewer's exposure to an arm ----------------------------------------------------------------

ARM = ("new-player", "on")


def carrying(type_: str, at_ms: int, variant: str, **fields: Any) -> Seen:
    return seen(type_, at_ms, flags={"new-player": variant, "other": "x"}, **fields)


def exposed_to(flag: str, variant: str, at_ms: int) -> Seen:
    return seen("exposure", at_ms, None, flag=flag, variant=variant)


def arm_units(events: list[Seen]) -> dict[Unit, list[Seen]]:
    found: dict[Unit, list[Seen]] = {}
    for event in events:
        for unit in units(event.body):
            found.setdefault(unit, []).append(event)
    return found


def test_an_event_folds_into_an_exposure_unit_per_variant_it_carries() -> None:
    event = carrying("complaint", 0, "on", kind="slow")
    arms = sorted(unit.arm for unit in units(event.body) if unit.arm is not None)
    assert arms == [("new-player", "on"), ("other", "x")]
    assert [u.kind for u in units(event.body) if u.arm is None] == ["viewer"]


@pytest.mark.parametrize(("carried", "units_"), [(MAX_ARMS, MAX_ARMS), (MAX_ARMS + 5, MAX_ARMS)])
def test_the_exposure_units_of_one_event_are_bounded(carried: int, units_: int) -> None:
    flags = {f"flag-{i}": "on" for i in range(carried)}
    event = seen("exposure", 0, None, flag="extra", variant="on", flags=flags)
    assert sum(unit.kind == "exposure" for unit in units(event.body)) == units_ + 1  # and "extra"


def test_an_exposure_unit_counts_from_the_first_event_of_its_variant() -> None:
    before = carrying("complaint", 0, "off", kind="slow")  # the other arm's: not this unit's
    events = [before, carrying("rating", 120_000, "on", score=2), exposed_to(*ARM, 90_000)]
    state = fold("exposure", {}, arm_units(events)[Unit("exposure", exposure_unit(*ARM, "v"), ARM)],
                 ARM)  # fmt: skip
    assert attribution("exposure", state) == (90_000, "", "", {"new-player": "on"}, False)
    found = facts("exposure", state)
    assert (found["viewers"], found["complained"], found["ratings"], found["exposed"]) == (
        1,
        0,
        1,
        1,
    )
    rows = contributions("exposure", state)
    assert {(key.flag, key.variant) for key in rows} == {ARM}
    assert {key.metric for key in rows} == {"complaint_rate", "satisfaction", "exposed_units"}


def test_only_an_exposure_event_to_its_own_arm_makes_a_unit_exposed() -> None:
    other_flag = seen("exposure", 0, None, flag="other", variant="x", flags={"new-player": "on"})
    state = fold("exposure", {}, [other_flag, carrying("complaint", 10, "on", kind="k")], ARM)
    assert "exposed" not in facts("exposure", state)
    assert "exposed_units" not in {key.metric for key in contributions("exposure", state)}
    assert fold("exposure", state, [exposed_to(*ARM, 20)], ARM)["exposed"] == 1


def test_the_viewer_counts_in_everyone_s_rows_alone() -> None:
    state = fold("viewer", {}, [carrying("complaint", 0, "on", kind="slow")])
    assert {(key.flag, key.variant) for key in contributions("viewer", state)} == {("", "")}


def test_the_order_and_chunking_of_an_arm_s_events_do_not_matter() -> None:
    events = [*started("w1", 5_000, 800), exposed_to(*ARM, 3_000), *started("w2", 1_000, 90)]
    events = [Seen({**e.body, "flags": {"new-player": "on"}}, e.at_ms) for e in events]
    whole = fold("exposure", {}, events, ARM)
    parts = fold("exposure", fold("exposure", {}, events[3:][::-1], ARM), events[:3], ARM)
    assert contributions("exposure", parts) == contributions("exposure", whole)


def test_an_exposure_unit_stored_before_arms_held_viewers_counts_as_it_did() -> None:
    """Its rows were written by the code before: everyone's and its arm's, exposed alone. Its
    next event moves it to its arm alone, with the viewer's facts from then on."""
    old = {
        "_at": 60_000,
        "_platform": "",
        "_app_version": "",
        "_arms": {"new-player": [60_000, "on"]},
    }
    assert {(k.flag, k.variant, k.metric) for k in contributions("exposure", old)} == {
        ("", "", "exposed_units"),
        ("new-player", "on", "exposed_units"),
    }
    new = fold("exposure", old, [carrying("complaint", 120_000, "on", kind="slow")], ARM)
    rows = contributions("exposure", new)
    assert {(k.minute, k.flag, k.variant) for k in rows} == {(60_000, *ARM)}
    assert {k.metric for k in rows} == {"exposed_units", "complaint_rate"}
    moved = change("exposure", old, new)
    assert moved[RowKey(60_000, "", "", "", "", "exposed_units")].n == -1


def test_an_exposure_unit_folds_with_its_arm() -> None:
    with pytest.raises(ValueError, match="its arm"):
        fold("exposure", {}, [exposed_to(*ARM, 0)])
