"""Merging minute rollups equals computing from raw events, for every metric kind: however the
events are chunked as they arrive, and whatever window is read."""

from __future__ import annotations

import itertools
import uuid
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reelout.telemetry.facts import Seen, State, Unit, fold, units
from reelout.telemetry.metrics import CATALOGUE, METRICS
from reelout.telemetry.sums import (
    MINUTE_MS,
    RowKey,
    Sums,
    change,
    contributions,
    estimate,
    quantile,
    total,
)

T0 = 1_700_000_000_000 - 1_700_000_000_000 % MINUTE_MS
FLAGS, VARIANTS = ("new-player", "dark-mode"), ("on", "off")
COHORTS = [("", ""), *((flag, variant) for flag in FLAGS for variant in VARIANTS)]
TYPES_AND_FIELDS: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "upload_completed": st.fixed_dictionaries(
        {
            "bytes": st.integers(1, 10**9),
            "duration_ms": st.integers(0, 10**6),
            "method": st.just("tus"),
        }
    ),
    "upload_failed": st.fixed_dictionaries(
        {"error_class": st.just("network"), "retryable": st.booleans()}
    ),
    "upload_abandoned": st.just({}),
    "exposure": st.fixed_dictionaries(
        {"flag": st.sampled_from(FLAGS), "variant": st.sampled_from(VARIANTS)}
    ),
    "play_request": st.just({}),
    "playing": st.just({}),
    "rebuffer_start": st.just({}),
    "heartbeat": st.fixed_dictionaries(
        {"watch_ms": st.integers(0, 10**6), "rebuffer_ms": st.integers(0, 10**5)},
        optional={"startup_ms": st.integers(0, 10**4), "network_bytes": st.integers(0, 10**7)},
    ),
    "cache_hit": st.fixed_dictionaries({"bytes": st.integers(0, 10**6)}),
    "view_end": st.fixed_dictionaries({"reason": st.sampled_from(["completed", "user_exit"])}),
    "error": st.fixed_dictionaries(
        {
            "code": st.just("E"),
            "fatal": st.booleans(),
            "category": st.sampled_from(["playback", "business"]),
            "before_first_frame": st.booleans(),
        }
    ),
    "app_session": st.fixed_dictionaries(
        {"status": st.sampled_from(["ok", "exited", "crashed", "abnormal"])}
    ),
    "rating": st.fixed_dictionaries({"score": st.integers(1, 5)}),
    "complaint": st.fixed_dictionaries({"kind": st.just("slow")}),
}


@st.composite
def an_event(draw: st.DrawFn) -> Seen:
    type_ = draw(st.sampled_from(sorted(TYPES_AND_FIELDS)))
    body: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "type": type_,
        "viewer_id": draw(st.sampled_from(["v1", "v2", "v3", "v4"])),
        "view_id": draw(st.sampled_from(["w1", "w2", "w3"])),
        "upload_id": draw(st.sampled_from(["u1", "u2", None])),
        "session_id": draw(st.sampled_from(["s1", "s2"])),
        "platform": draw(st.sampled_from(["ios", "web"])),
        "flags": draw(st.dictionaries(st.sampled_from(FLAGS), st.sampled_from(VARIANTS))),
        **draw(TYPES_AND_FIELDS[type_]),
    }
    return Seen(body, T0 + draw(st.integers(0, 5 * MINUTE_MS)))


def _units(events: Sequence[Seen]) -> dict[Unit, list[Seen]]:
    found: dict[Unit, list[Seen]] = defaultdict(list)
    for seen in events:
        for unit in units(seen.body):
            found[unit].append(seen)
    return found


def rolled_up(chunks: Sequence[Sequence[Seen]]) -> dict[RowKey, Sums]:
    """What the rollup job keeps: units' states folded chunk by chunk, rows changed by deltas."""
    states: dict[Unit, State] = {}
    rows: dict[RowKey, Sums] = defaultdict(Sums)
    for chunk in chunks:
        for unit, arrived in _units(chunk).items():
            old = states.get(unit, {})
            new = fold(unit.kind, old, arrived, unit.arm)
            states[unit] = orjson.loads(orjson.dumps(new))  # as the units table keeps it
            for key, sums in change(unit.kind, old, new).items():
                rows[key].add(sums)
    return rows


def from_raw(events: Sequence[Seen]) -> dict[RowKey, Sums]:
    """The same numbers computed at once from every raw event."""
    rows: dict[RowKey, Sums] = defaultdict(Sums)
    for unit, seen in _units(events).items():
        for key, sums in contributions(unit.kind, fold(unit.kind, {}, seen, unit.arm)).items():
            rows[key].add(sums)
    return rows


def window(
    rows: dict[RowKey, Sums], metric: str, cohort: tuple[str, str], first: int, last: int
) -> Sums:
    return total(
        sums
        for key, sums in rows.items()
        if key.metric == metric
        and (key.flag, key.variant) == cohort
        and first <= (key.minute - T0) // MINUTE_MS <= last
    )


def close(a: Sums, b: Sums) -> bool:
    pairs = zip((a.n, a.x, a.x2, a.d, a.d2, a.xd), (b.n, b.x, b.x2, b.d, b.d2, b.xd), strict=True)
    hist = {k: v for k, v in a.hist.items() if abs(v) > 1e-9} == {
        k: v for k, v in b.hist.items() if abs(v) > 1e-9
    }
    return hist and all(abs(p - q) <= 1e-6 * max(1.0, abs(p), abs(q)) for p, q in pairs)


@settings(max_examples=150)
@given(
    events=st.lists(an_event(), min_size=1, max_size=40),
    cuts=st.lists(st.integers(0, 40), max_size=5),
    first=st.integers(0, 5),
    span=st.integers(0, 5),
)
def test_merged_minutes_equal_raw_events_for_every_metric(
    events: list[Seen], cuts: list[int], first: int, span: int
) -> None:
    bounds = sorted({0, len(events), *(c for c in cuts if c < len(events))})
    chunks = [events[a:b] for a, b in itertools.pairwise(bounds)]
    merged, raw = rolled_up(chunks), from_raw(events)
    for metric in CATALOGUE:  # proportions, ratios and means alike
        for cohort in COHORTS:
            got = window(merged, metric.name, cohort, first, first + span)
            want = window(raw, metric.name, cohort, first, first + span)
            assert close(got, want), (metric.name, cohort, got, want)


def recount(events: Sequence[Seen], cohort: tuple[str, str]) -> dict[str, tuple[int, bool, bool]]:
    """Per viewer in `cohort` (everyone: all their events; an arm: the events that carried its
    variant or an exposure to it), counted from the raw events: the minute of the first such
    event, whether one is a complaint, and whether one is an exposure to the arm."""
    found: dict[str, tuple[int, bool, bool]] = {}
    for seen in events:
        body, (flag, variant) = seen.body, cohort
        served = seen.type == "exposure" and (body["flag"], body["variant"]) == cohort
        if flag and body["flags"].get(flag) != variant and not served:
            continue
        minute, complained, exposed = found.get(body["viewer_id"], (10**9, False, False))
        minute = min(minute, (seen.at_ms - T0) // MINUTE_MS)
        found[body["viewer_id"]] = (
            minute,
            complained or seen.type == "complaint",
            exposed or served,
        )
    return found


@settings(max_examples=100)
@given(
    events=st.lists(an_event(), min_size=1, max_size=40),
    cuts=st.lists(st.integers(0, 40), max_size=4),
    first=st.integers(0, 5),
    span=st.integers(0, 5),
)
def test_an_arm_counts_each_viewer_from_their_first_exposure_to_it(
    events: list[Seen], cuts: list[int], first: int, span: int
) -> None:
    """complaint_rate and exposed_units per arm, as the rollups keep them, against a recount:
    a viewer counts in an arm from the first event that carried its variant or exposed them to
    it, with every such event; in everyone's rows from their first event, with every event."""
    bounds = sorted({0, len(events), *(c for c in cuts if c < len(events))})
    merged = rolled_up([events[a:b] for a, b in itertools.pairwise(bounds)])
    for cohort in COHORTS:
        units = [u for u in recount(events, cohort).values() if first <= u[0] <= first + span]
        complaints = window(merged, "complaint_rate", cohort, first, first + span)
        assert (complaints.n, complaints.x) == (len(units), sum(u[1] for u in units)), cohort
        exposed = window(merged, "exposed_units", cohort, first, first + span).n
        assert exposed == (sum(u[2] for u in units) if cohort[0] else 0), cohort


PLAYBACK = ("play_request", "playing", "heartbeat", "view_end", "cache_hit")


@st.composite
def a_playback_event(draw: st.DrawFn) -> Seen:
    """Playback alone, from two viewers: their views meet often enough to have a startup."""
    type_ = draw(st.sampled_from(PLAYBACK))
    body = {"event_id": str(uuid.uuid4()), "type": type_,
            "viewer_id": draw(st.sampled_from(["v1", "v2"])),
            "view_id": draw(st.sampled_from(["w1", "w2", "w3"])),
            "flags": {"new-player": draw(st.sampled_from(["on", "off"]))},
            **draw(TYPES_AND_FIELDS[type_])}  # fmt: skip
    return Seen(body, T0 + draw(st.integers(0, 3 * MINUTE_MS)))


@settings(max_examples=100)
@given(
    events=st.lists(a_playback_event(), min_size=1, max_size=30),
    cuts=st.lists(st.integers(0, 30), max_size=4),
)
def test_merged_minutes_equal_raw_events_for_the_viewer_startup_and_cache_metrics(
    events: list[Seen], cuts: list[int]
) -> None:
    bounds = sorted({0, len(events), *(c for c in cuts if c < len(events))})
    chunks = [events[a:b] for a, b in itertools.pairwise(bounds)]
    merged, raw = rolled_up(chunks), from_raw(events)
    for metric in ("video_startup_log_ms", "cache_hit_ratio", "video_startup_seconds"):
        for cohort in COHORTS[:3]:
            got, want = window(merged, metric, cohort, 0, 3), window(raw, metric, cohort, 0, 3)
            assert close(got, want), (metric, cohort, got, want)


def test_a_late_event_moves_its_unit_to_its_own_minute() -> None:
    late = Seen(
        {"event_id": "a", "type": "play_request", "viewer_id": "v", "view_id": "w"},
        T0 + 3 * MINUTE_MS,
    )
    early = Seen({**late.body, "event_id": "b", "type": "playing"}, T0 + 3 * MINUTE_MS + 900)
    earlier = Seen({**late.body, "event_id": "c", "type": "player_ready"}, T0)
    rows = rolled_up([[late, early], [earlier]])
    minutes = {
        key.minute for key, sums in rows.items() if sums.n and key.metric == "video_startup_seconds"
    }
    assert minutes == {T0}


@pytest.mark.parametrize(
    ("metric", "values", "expected"),
    [
        ("upload_success_rate", [(1, 1), (0, 1), (1, 1), (1, 1)], 0.75),
        ("rebuffer_percentage", [(10, 100), (0, 300)], 0.025),
        ("video_startup_seconds", [(1.0, 1), (3.0, 1)], 2.0),
        ("video_startup_log_ms", [(6.0, 1), (8.0, 1)], 7.0),
        ("cache_hit_ratio", [(300, 1000), (0, 1000)], 0.15),
    ],
)
def test_estimates_read_back_the_metric(
    metric: str, values: list[tuple[float, float]], expected: float
) -> None:
    sums = total(Sums.of_unit(x, d, METRICS[metric].quantiles) for x, d in values)
    found = estimate(METRICS[metric], sums)
    assert found is not None
    assert found.mean == pytest.approx(expected)


def test_quantiles_from_the_histogram_are_within_its_bucket_width() -> None:
    sums = total(Sums.of_unit(float(v), 1, True) for v in range(1, 1001))
    p50, p90 = quantile(sums.hist, 0.5), quantile(sums.hist, 0.9)
    assert p50 == pytest.approx(500, rel=0.03)
    assert p90 == pytest.approx(900, rel=0.03)
