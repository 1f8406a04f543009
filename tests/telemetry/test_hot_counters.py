"""The request-path counters directly: a request's duration lands in the right bucket and the
histogram adds up; the flag counter folds pairs past the cap into `other` and loses no count."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from reelout.flags.engine.evaluator import ErrorCode, Reason, Resolution
from reelout.telemetry.hot_counters import HTTP_BUCKETS, FlagEvaluations, HttpRequests
from reelout.telemetry.metric_labels import OTHER

scopes = st.sampled_from(["production", "staging"])
values = st.sampled_from(["a", "b", "c", "d", "e", "f"])


def exposed(
    collector: HttpRequests | FlagEvaluations,
) -> dict[str, list[tuple[dict[str, str], float]]]:
    """The collector as a scrape shows it, parsed back by the library."""
    registry = CollectorRegistry()
    registry.register(collector)
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((sample.labels, sample.value))
    return found


def test_durations_land_in_the_first_bucket_that_holds_them() -> None:
    http = HttpRequests()
    for seconds in (0.0005, 0.001, 0.0011, 0.3, 500.0):  # 0.001 is `le="0.001"`: bounds hold
        http.observe("GET", "/x", 200, seconds)
    http.observe("GET", "/x", 404, 0.002)
    found = exposed(http)
    buckets = {
        labels["le"]: count
        for labels, count in found["reelout_http_request_duration_seconds_bucket"]
    }
    assert list(buckets) == [*(str(float(b)) for b in HTTP_BUCKETS), "+Inf"]
    assert (buckets["0.001"], buckets["0.0025"], buckets["0.5"], buckets["120.0"]) == (2, 4, 5, 5)
    assert buckets["+Inf"] == 6
    (count,) = found["reelout_http_request_duration_seconds_count"]
    (total,) = found["reelout_http_request_duration_seconds_sum"]
    assert count[1] == 6 and total[1] == pytest.approx(500.3046)
    by_class = {labels["status_class"]: n for labels, n in found["reelout_http_requests_total"]}
    assert by_class == {"2xx": 5, "4xx": 1}


def counts(evaluations: FlagEvaluations) -> dict[tuple[str, ...], float]:
    (family,) = evaluations.collect()
    return {tuple(s.labels.values()): s.value for s in family.samples}


def served(variant: str) -> Resolution:
    return Resolution(variant, variant, Reason.STATIC)


@given(
    st.integers(min_value=0, max_value=3),
    st.lists(st.tuples(scopes, st.sampled_from(["f1", "f2", "f3"]), values), max_size=30),
)
def test_folding_into_other_loses_no_evaluation(
    limit: int, answers: list[tuple[str, str, str]]
) -> None:
    evaluations = FlagEvaluations(limit)
    for environment, key, variant in answers:
        evaluations.evaluated(environment, [(key, served(variant))])
    counted = counts(evaluations)
    assert sum(counted.values()) == len(answers)
    for scope in ("production", "staging"):
        named = {(f, v) for (env, f, v, _) in counted if env == scope and f != OTHER}
        assert len(named) <= limit


def test_an_unknown_key_never_takes_a_pair_s_place() -> None:
    evaluations = FlagEvaluations(1)
    missing = Resolution(None, None, Reason.ERROR, ErrorCode.FLAG_NOT_FOUND, "no such flag")
    evaluations.evaluated("production", [("typo", missing), ("typo2", missing)])
    evaluations.evaluated("production", [("real", served("on"))])
    assert counts(evaluations) == {
        ("production", OTHER, "", "ERROR"): 2,
        ("production", "real", "on", "STATIC"): 1,
    }
