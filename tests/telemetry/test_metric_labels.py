"""The bounded labels, directly and with Hypothesis: first-come caps, fixed sets, and the flag
evaluation counter that folds pairs past the cap into `other` without losing a count."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from reelout.flags.engine.evaluator import ErrorCode, Reason, Resolution
from reelout.telemetry.metric_labels import (
    OTHER,
    FirstSeen,
    http_method,
    status_class,
    upload_method,
)
from reelout.telemetry.prometheus import FlagEvaluations

scopes = st.sampled_from(["production", "staging"])
values = st.sampled_from(["a", "b", "c", "d", "e", "f"])


@given(st.integers(min_value=0, max_value=4), st.lists(st.tuples(scopes, values), max_size=40))
def test_the_first_values_per_scope_keep_their_names(
    limit: int, seen: list[tuple[str, str]]
) -> None:
    labels = FirstSeen(limit, OTHER)
    first: dict[str, list[str]] = {}
    for scope, value in seen:
        got = labels.label(value, scope)
        firsts = first.setdefault(scope, [])
        if value not in firsts:
            firsts.append(value)
        assert got == (value if value in firsts[:limit] else OTHER)
    for scope, firsts in first.items():
        assert labels.named(scope) == frozenset(firsts[:limit])


def test_both_sides_of_the_cap() -> None:
    labels = FirstSeen(2, OTHER)
    assert [labels.label(v) for v in ("a", "b", "a", "c", "b", "c")] == [
        "a", "b", "a", OTHER, "b", OTHER,
    ]  # fmt: skip
    assert labels.label("c", "another scope") == "c", "each scope has its own cap"


def test_fixed_sets() -> None:
    assert [http_method(m) for m in ("GET", "PATCH", "PROPFIND", "get")] == [
        "GET", "PATCH", OTHER, OTHER,
    ]  # fmt: skip
    assert [status_class(s) for s in (101, 204, 304, 404, 599, 600, 99)] == [
        "1xx", "2xx", "3xx", "4xx", "5xx", OTHER, OTHER,
    ]  # fmt: skip
    assert [upload_method(s) for s in ("tus", "direct", "legacy", "ftp")] == [
        "tus", "direct", "base64", OTHER,
    ]  # fmt: skip


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
