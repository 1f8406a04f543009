"""Validation and diffs directly: pointers of faults, strict JSON, patches that replay exactly."""

from __future__ import annotations

from typing import Any

import jsonpatch
import pytest
from hypothesis import given
from hypothesis import strategies as st

from reelout.errors import BadRequest
from reelout.flags.admin.service import diff, merge_diff, merge_patch, summary
from reelout.flags.engine.validation import InvalidFlagSet, check, faults, parse

BOOL = {"state": "ENABLED", "variants": {"on": True, "off": False}, "defaultVariant": "off"}


def test_keys_with_slash_and_tilde_are_escaped_in_pointers() -> None:
    document = {"flags": {"a/b~c": {**BOOL, "defaultVariant": "x"}}}
    assert [f.pointer for f in faults(document)] == ["/flags/a~1b~0c/defaultVariant"]


def test_evaluators_cannot_ref_each_other_and_metadata_is_typed() -> None:
    document = {
        "flags": {"f": {**BOOL, "targeting": {"if": [{"$ref": "one"}, "on", "off"]}}},
        "$evaluators": {"one": {"and": [{"$ref": "two"}, True]}, "two": {"==": [1, 1]}},
        "metadata": {"owner": ["not", "a", "scalar"]},
    }
    found = {f.pointer: f.message for f in faults(document)}
    assert set(found) == {"/$evaluators/one/and/0/$ref", "/metadata/owner"}


def test_a_null_default_variant_is_allowed() -> None:
    assert faults({"flags": {"f": {**BOOL, "defaultVariant": None}}}) == []


def test_check_lists_every_fault_in_the_error() -> None:
    with pytest.raises(InvalidFlagSet) as caught:
        check({"flags": {"a": {**BOOL, "defaultVariant": "x"}, "b": {"variants": {"x": 1}}}})
    errors = caught.value.details["errors"]
    assert [e["pointer"] for e in errors] == ["/flags/a/defaultVariant", "/flags/b/state"]
    assert caught.value.code == "INVALID_FLAG_SET" and caught.value.status == 400


@pytest.mark.parametrize("text", ['{"a": 1, "a": 2}', "[NaN]", '{"a": Infinity}', b"\xff{}"])
def test_parse_is_strict(text: str | bytes) -> None:
    with pytest.raises(BadRequest) as caught:
        parse(text)
    assert caught.value.code == "INVALID_JSON"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=12,
)
objects = st.dictionaries(st.text(max_size=4), json_values, max_size=4)


@given(objects, objects)
def test_the_audit_diff_turns_the_old_set_into_the_new(
    old: dict[str, Any], new: dict[str, Any]
) -> None:
    assert jsonpatch.apply_patch(old, diff(old, new)) == new


@given(objects, objects)
def test_merge_patch_sets_what_it_names_and_keeps_the_rest(
    target: dict[str, Any], patch: dict[str, Any]
) -> None:
    merged = merge_patch(target, patch)
    for name, value in patch.items():
        if value is None:
            assert name not in merged
        elif not isinstance(value, dict):
            assert merged[name] == value
    for name, value in target.items():
        if name not in patch:
            assert merged[name] == value


no_nulls = st.recursive(
    st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=12,
)


@given(json_values, no_nulls)
def test_merge_diff_is_the_merge_patch_from_old_to_new(old: Any, new: Any) -> None:
    """What the console schedules as a targeting change becomes exactly the new targeting."""
    assert merge_patch(old, merge_diff(old, new)) == new


def test_merge_diff_names_only_what_changed() -> None:
    old = {"if": [True, "on", "off"], "keep": {"a": 1, "b": 2}, "gone": 1}
    new = {"if": [False, "on", "off"], "keep": {"a": 1, "b": 3}}
    assert merge_diff(old, new) == {"if": [False, "on", "off"], "keep": {"b": 3}, "gone": None}


def test_summary_names_added_removed_and_changed_flags() -> None:
    old = {"flags": {"a": BOOL, "b": BOOL, "c": BOOL}}
    new = {"flags": {"b": BOOL, "c": {**BOOL, "state": "DISABLED"}, "d": BOOL}}
    assert summary(old, new).model_dump() == {"added": ["d"], "removed": ["a"], "changed": ["c"]}


def test_the_engine_refuses_prerequisite_cycles_and_rules_it_cannot_run() -> None:
    def needs(other: str) -> dict[str, Any]:
        return {**BOOL, "targeting": {"if": [{"var": f"$flags.{other}"}, "on", "off"]}}

    with pytest.raises(InvalidFlagSet) as cycle:
        check({"flags": {"a": needs("b"), "b": needs("a")}})
    (fault,) = cycle.value.details["errors"]
    assert "a -> b -> a" in fault["message"] or "b -> a -> b" in fault["message"]
    unknown = {**BOOL, "targeting": {"no_such_operator": [1]}}
    with pytest.raises(InvalidFlagSet) as broken:
        check({"flags": {"f": unknown}})
    assert [e["pointer"] for e in broken.value.details["errors"]] == ["/flags/f/targeting"]
    assert check({"flags": {"a": needs("b"), "b": BOOL}})["flags"]["a"] == needs("b")


def test_json_nested_past_what_python_can_read_is_refused_in_words() -> None:
    with pytest.raises(BadRequest) as refused:
        parse("[" * 100_000 + "]" * 100_000)
    assert refused.value.code == "JSON_TOO_DEEP"
