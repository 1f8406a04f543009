"""The bounded labels, directly and with Hypothesis: first-come caps and fixed sets."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from reelout.telemetry.metric_labels import (
    OTHER,
    FirstSeen,
    http_method,
    status_class,
    upload_method,
)

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
