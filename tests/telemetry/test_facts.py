"""What units' facts say, folded from events in the pure layer: the viewer's mean of log
startup ms and a view's cache bytes."""

from __future__ import annotations

import math
from typing import Any

import pytest

from reelout.telemetry.facts import MAX_VIEWS_PER_VIEWER, Seen, facts, fold
from reelout.telemetry.metrics import METRICS


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
