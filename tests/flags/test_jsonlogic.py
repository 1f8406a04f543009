"""Direct tests of the pure JsonLogic engine: each operator, its edges, coercions and errors."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reelout.flags.engine.jsonlogic import (
    JsonLogic,
    UnknownOperationError,
    lookup,
    loose_equal,
    strict_equal,
    to_number,
    truthy,
)

LOGIC = JsonLogic({})
DATA = {
    "user": {"id": "u-1", "age": 42, "tags": ["a", "b"], "none": None},
    "country": "de",
    "n": "7",
    "empty": "",
    "items": [1, 2, 3, 4],
}


def apply(rule: Any, data: Any = DATA) -> Any:
    return LOGIC.apply(rule, data)


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ({"var": "country"}, "de"),
        ({"var": "user.age"}, 42),
        ({"var": "user.tags.1"}, "b"),
        ({"var": ["user.tags.1"]}, "b"),
        ({"var": "items.0"}, 1),
        ({"var": "missing"}, None),
        ({"var": "user.missing.deeper"}, None),
        ({"var": ["missing", "fallback"]}, "fallback"),
        ({"var": ["user.none", "fallback"]}, "fallback"),  # null counts as missing
        ({"var": ["items.9", "fallback"]}, "fallback"),
        ({"var": ["items.x", "fallback"]}, "fallback"),
        ({"var": ["country.deeper", "fallback"]}, "fallback"),  # no path through a string
        ({"var": ""}, DATA),
        ({"var": []}, DATA),
    ],
)
def test_var_reads_dotted_paths_with_defaults(rule: Any, expected: Any) -> None:
    assert apply(rule) == expected


def test_var_with_a_number_indexes_a_list() -> None:
    assert apply({"var": 1}, ["zero", "one"]) == "one"
    assert apply({"var": [5, "none"]}, ["zero"]) == "none"


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ({"missing": ["country", "nope", "user.id", "empty"]}, ["nope", "empty"]),
        ({"missing": [["nope", "country"]]}, ["nope"]),
        ({"missing": []}, []),
        ({"missing_some": [1, ["nope", "country"]]}, []),
        ({"missing_some": [2, ["nope", "country"]]}, ["nope"]),
        ({"missing_some": [1, "not a list"]}, []),
    ],
)
def test_missing_and_missing_some(rule: Any, expected: Any) -> None:
    assert apply(rule) == expected


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ({"==": [1, 1.0]}, True),
        ({"==": [1, "1"]}, True),  # loose: the string is read as a number
        ({"==": [0, ""]}, True),
        ({"==": [True, 1]}, True),
        ({"==": [None, None]}, True),
        ({"==": [None, 0]}, False),  # null equals only null
        ({"==": ["a", "a"]}, True),
        ({"==": ["a", "b"]}, False),
        ({"==": [[1], [1]]}, False),  # arrays are equal only to themselves
        ({"==": [1]}, False),
        ({"!=": [1, "2"]}, True),
        ({"!=": [1, "1"]}, False),
        ({"===": [1, 1.0]}, True),
        ({"===": [1, "1"]}, False),
        ({"===": [True, 1]}, False),  # booleans are not numbers
        ({"===": [None, None]}, True),
        ({"!==": [1, "1"]}, True),
        ({"!==": [1]}, True),
        ({"===": [[1], [1]]}, False),  # as with ==: arrays and objects equal nothing
        ({"!==": [[1], [1]]}, True),
    ],
)
def test_equality_loose_and_strict(rule: Any, expected: bool) -> None:
    assert apply(rule) is expected


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ({">": [2, 1]}, True),
        ({">": ["10", 9]}, True),  # a numeric string compares as a number
        ({">": ["b", "a"]}, True),  # two strings compare as text
        ({">": ["10", "9"]}, False),
        ({">": ["x", 1]}, False),  # NaN compares false
        ({">": [1]}, False),
        ({">=": [1, 1]}, True),
        ({"<": [1, 2]}, True),
        ({"<": [1, 2, 3]}, True),  # between, exclusive
        ({"<": [1, 1, 3]}, False),
        ({"<=": [1, 1, 3]}, True),  # between, inclusive
        ({"<=": [1, 4, 3]}, False),
        ({"<": [None, 1]}, True),  # null is 0
        ({"<": [{"var": "n"}, 8]}, True),
    ],
)
def test_comparisons(rule: Any, expected: bool) -> None:
    assert apply(rule) is expected


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ({"+": [1, 2, 3]}, 6),
        ({"+": ["1", 2]}, 3),
        ({"+": []}, 0),
        ({"+": [1, "x"]}, None),
        ({"+": [0.5, 0.25]}, 0.75),
        ({"*": [2, "3", 4]}, 24),
        ({"-": [5, 7]}, -2),
        ({"-": [5]}, -5),  # one argument negates
        ({"-": ["x"]}, None),
        ({"/": [7, 2]}, 3.5),
        ({"/": [8, 2]}, 4),
        ({"/": [1, 0]}, None),  # no division by zero
        ({"/": [1]}, None),
        ({"%": [7, 3]}, 1),
        ({"%": [7, 0]}, None),
        ({"max": [1, 9, "3"]}, 9),
        ({"max": []}, None),
        ({"min": [4, 2, 8]}, 2),
    ],
)
def test_arithmetic(rule: Any, expected: Any) -> None:
    result = apply(rule)
    assert result == expected and type(result) is type(expected)


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ({"cat": ["a", 1, True, None, 2.0, 2.5]}, "a1true22.5"),
        ({"cat": []}, ""),
        ({"substr": ["reelout", 4]}, "out"),
        ({"substr": ["reelout", -3]}, "out"),
        ({"substr": ["reelout", 0, 4]}, "reel"),
        ({"substr": ["reelout", 1, -3]}, "eel"),  # a negative length stops that far from the end
        ({"substr": ["reelout", -3, 2]}, "ou"),
        ({"in": ["ee", "reelout"]}, True),
        ({"in": ["x", "reelout"]}, False),
        ({"in": [1, "1 2"]}, False),  # only a string is looked for in a string
        ({"in": ["b", ["a", "b"]]}, True),
        ({"in": [1, ["1", True]]}, False),  # strict membership in a list
        ({"in": ["a", None]}, False),
        ({"in": ["a"]}, False),
        ({"merge": [[1, 2], 3, [[4]]]}, [1, 2, 3, [4]]),
        ({"log": ["seen"]}, "seen"),
    ],
)
def test_strings_membership_and_lists(rule: Any, expected: Any) -> None:
    assert apply(rule) == expected


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ({"if": [True, "yes", "no"]}, "yes"),
        ({"if": [[], "yes", "no"]}, "no"),  # an empty array is falsy
        ({"if": ["0", "yes", "no"]}, "yes"),  # a non-empty string is truthy
        ({"if": [False, 1, False, 2, 3]}, 3),
        ({"if": [False, 1, True, 2, 3]}, 2),
        ({"if": [False, "yes"]}, None),
        ({"if": []}, None),
        ({"?:": [1, "yes", "no"]}, "yes"),
        ({"and": [1, "a", 0, "never"]}, 0),  # the first falsy value
        ({"and": [1, "a"]}, "a"),
        ({"or": [0, "", "first", "never"]}, "first"),  # the first truthy value
        ({"or": [0, False]}, False),
        ({"!": [[]]}, True),
        ({"!": [0]}, True),
        ({"!!": ["0"]}, True),
        ({"!!": [[]]}, False),
    ],
)
def test_conditions_and_truthiness(rule: Any, expected: Any) -> None:
    assert apply(rule) == expected


def test_and_and_or_do_not_evaluate_past_the_deciding_value() -> None:
    seen: list[Any] = []
    logic = JsonLogic({"spy": lambda args, data: seen.append(args[0]) or args[0]})
    assert logic.apply({"and": [{"spy": [0]}, {"spy": [1]}]}, {}) == 0
    assert logic.apply({"or": [{"spy": [2]}, {"spy": [3]}]}, {}) == 2
    assert logic.apply({"if": [{"spy": [True]}, {"spy": ["then"]}, {"spy": ["else"]}]}, {})
    assert seen == [0, 2, True, "then"]


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ({"map": [{"var": "items"}, {"*": [{"var": ""}, 2]}]}, [2, 4, 6, 8]),
        ({"map": [{"var": "nope"}, {"var": ""}]}, []),  # a missing list maps to nothing
        ({"filter": [{"var": "items"}, {"%": [{"var": ""}, 2]}]}, [1, 3]),
        (
            {"reduce": [{"var": "items"}, {"+": [{"var": "current"}, {"var": "accumulator"}]}, 0]},
            10,
        ),
        ({"reduce": [[], {"var": "current"}, "start"]}, "start"),
        ({"all": [{"var": "items"}, {">": [{"var": ""}, 0]}]}, True),
        ({"all": [[], {">": [{"var": ""}, 0]}]}, False),  # all of nothing is false
        ({"some": [{"var": "items"}, {">": [{"var": ""}, 3]}]}, True),
        ({"some": [[], True]}, False),
        ({"none": [{"var": "items"}, {">": [{"var": ""}, 4]}]}, True),
        ({"none": [[], True]}, True),
    ],
)
def test_iteration(rule: Any, expected: Any) -> None:
    assert apply(rule) == expected


@pytest.mark.parametrize(
    "rule",
    [
        "plain",
        42,
        None,
        [1, "two", None],
        {"not": "a rule", "two": "keys"},  # more than one key is a value, not an operation
    ],
)
def test_values_that_are_not_operations_evaluate_to_themselves(rule: Any) -> None:
    assert apply(rule) == rule


def test_a_list_of_rules_evaluates_each() -> None:
    assert apply([{"var": "country"}, 1, {"+": [1, 1]}]) == ["de", 1, 2]


@pytest.mark.parametrize(
    "rule",
    [
        {"nope": [1]},
        {"if": [{"nope": []}, 1, 2]},
        [{"var": "a"}, {"nope": 1}],
        {"map": [[1], {"fractional": []}]},  # custom operators are not built in
    ],
)
def test_unknown_operators_are_refused_at_validation_and_compilation(rule: Any) -> None:
    with pytest.raises(UnknownOperationError, match="unknown operator"):
        LOGIC.validate(rule)
    with pytest.raises(UnknownOperationError):
        LOGIC.compile(rule)


def test_custom_operators_receive_evaluated_arguments_and_the_data() -> None:
    logic = JsonLogic({"greet": lambda args, data: f"{args[0]}, {data['name']}"})
    assert logic.known("greet") and logic.known("if") and not logic.known("nope")
    logic.validate({"greet": [{"var": "word"}]})
    assert logic.apply({"greet": [{"var": "word"}]}, {"word": "hi", "name": "Ada"}) == "hi, Ada"
    assert not JsonLogic({}).known("greet"), "custom operators belong to their interpreter"


def test_a_compiled_rule_can_be_reused_on_other_data() -> None:
    rule = LOGIC.compile({"if": [{"in": [{"var": "country"}, ["de", "fr"]]}, "eu", "other"]})
    assert [rule({"country": c}) for c in ("de", "us", "fr")] == ["eu", "other", "eu"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, 1.0),
        (False, 0.0),
        (3, 3.0),
        (None, 0.0),
        ("", 0.0),
        ("  ", 0.0),
        (" 2.5 ", 2.5),
        ("x", None),
        ([1], None),
        ({}, None),
    ],
)
def test_to_number_coerces_like_javascript(value: Any, expected: float | None) -> None:
    assert to_number(value) == expected


json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-1000, max_value=1000),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.text(max_size=5),
)
json_values = st.recursive(  # an object with one key is an operation, so none here
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=3), inner, max_size=3).filter(lambda d: len(d) != 1)
    ),
    max_leaves=8,
)


@given(json_values)
def test_not_and_double_not_agree_with_truthiness(value: Any) -> None:
    assert apply({"!!": [value]}) is truthy(value)
    assert apply({"!": [value]}) is (not truthy(value))


@given(json_scalars, json_scalars)
def test_equality_is_symmetric_and_strict_implies_loose(a: Any, b: Any) -> None:
    assert loose_equal(a, b) == loose_equal(b, a)
    assert strict_equal(a, b) == strict_equal(b, a)
    if strict_equal(a, b):
        assert loose_equal(a, b)


@given(st.dictionaries(st.from_regex(r"[a-z]{1,4}", fullmatch=True), json_scalars, min_size=1))
def test_var_reads_every_key_of_nested_data(inner: dict[str, Any]) -> None:
    data = {"outer": inner}
    for key, value in inner.items():
        assert apply({"var": f"outer.{key}"}, data) == lookup(data, f"outer.{key}")
        assert apply({"var": [f"outer.{key}", "default"]}, data) == (
            "default" if value is None else value
        )


@given(st.lists(st.integers(min_value=-10_000, max_value=10_000), min_size=1, max_size=6))
def test_arithmetic_on_integers_matches_python(numbers: list[int]) -> None:
    assert apply({"+": numbers}) == sum(numbers)
    assert apply({"max": numbers}) == max(numbers)
    assert apply({"min": numbers}) == min(numbers)
    assert apply({"<=": [numbers[0], numbers[0], numbers[-1]]}) is (numbers[0] <= numbers[-1])


@given(st.text(max_size=8), st.text(max_size=8))
def test_in_on_strings_and_cat_match_python(needle: str, haystack: str) -> None:
    assert apply({"in": [needle, haystack]}) is (needle in haystack)
    assert apply({"cat": [needle, haystack]}) == needle + haystack


@given(json_values)
def test_compiling_is_the_same_as_applying_and_folds_constants(value: Any) -> None:
    rule = {"if": [{"!!": [value]}, {"var": "x"}, [value]]}
    compiled = LOGIC.compile(rule)
    for data in ({"x": 1}, {"x": "other"}, {}):
        assert compiled(data) == LOGIC.apply(rule, data)
