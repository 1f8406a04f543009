"""Property tests: compiled fast paths agree with the interpreter; rollouts only add users."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from reelout.flags import evaluate, parse_flag_set

NOW = 1_800_000_000.0
VARIANTS = {"on": True, "off": False}


def flag(targeting: Any = None, state: str = "ENABLED") -> dict[str, Any]:
    body: dict[str, Any] = {"state": state, "variants": VARIANTS, "defaultVariant": "off"}
    if targeting is not None:
        body["targeting"] = targeting
    return body


SHAPES: dict[str, Any] = {
    "static": flag(),
    "kill_switch": flag(state="DISABLED"),
    "split": flag({"fractional": [["on", 30], ["off", 70]]}),
    "split_by_user": flag({"fractional": [{"var": "user.id"}, ["on", 1], ["off", 2]]}),
    "split_zero": flag({"fractional": [["on", 0], ["off", 0]]}),
    "in_list": flag({"if": [{"in": [{"var": "country"}, ["de", "fr", 1, True]]}, "on", "off"]}),
    "in_list_null": flag({"if": [{"in": [{"var": "country"}, ["de"]]}, "on"]}),
    "follows": flag({"if": [{"var": "$flags.in_list"}, "on", "off"]}),
    "follows_strict": flag({"if": [{"===": [{"var": "$flags.split"}, True]}, "on", None]}),
    "in_list_then_split": flag(
        {
            "if": [
                {"in": [{"var": "country"}, ["de", "fr"]]},
                {"fractional": [["on", 25], ["off", 75]]},
                "off",
            ]
        }
    ),
    "follows_then_split": flag(
        {
            "if": [
                {"var": "$flags.in_list"},
                "off",
                {"fractional": [{"var": "user.id"}, ["on", 1], ["off", 1]]},
            ]
        }
    ),
}
FAST = {
    "split",
    "in_list_then_split",
    "follows_then_split",
    "split_by_user",
    "split_zero",
    "in_list",
    "in_list_null",
    "follows",
    "follows_strict",
}

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.floats(-2, 2),
    st.sampled_from(["de", "fr", "us", "", "1"]),
    st.text(max_size=8),
)
values = st.one_of(
    scalars,
    st.lists(scalars, max_size=2),
    st.dictionaries(st.text(max_size=3), scalars, max_size=2),
)
contexts = st.fixed_dictionaries(
    {},
    optional={
        "targetingKey": st.one_of(st.text(max_size=12), st.integers(), st.none()),
        "country": values,
        "user": st.one_of(values, st.fixed_dictionaries({"id": values})),
    },
)


def test_fast_paths_are_compiled() -> None:
    flags = parse_flag_set({"flags": SHAPES})
    for key in FAST:
        rule = flags.flags[key].rule
        assert rule is not None and "general_rule" not in rule.__qualname__, key


@settings(max_examples=300, deadline=None)
@given(context=contexts, generation=st.sampled_from(["v2", "v3"]))
def test_compiled_and_general_paths_agree(context: dict[str, Any], generation: str) -> None:
    doc = {"metadata": {"reelout.fractional": generation}, "flags": SHAPES}
    fast, general = parse_flag_set(doc), parse_flag_set(doc, fast_paths=False)
    for key in SHAPES:
        args: dict[str, Any] = {"default": None, "expected_type": bool, "now": NOW}
        assert evaluate(fast, key, context, **args) == evaluate(general, key, context, **args)


def rollout(weight: int, generation: str, fast_paths: bool, treatment_first: bool) -> Any:
    buckets = [["on", weight], ["off", 100 - weight]]
    doc = {
        "metadata": {"reelout.fractional": generation},
        "flags": {"f": flag({"fractional": buckets if treatment_first else buckets[::-1]})},
    }
    return parse_flag_set(doc, fast_paths=fast_paths)


@settings(max_examples=300, deadline=None)
@given(
    users=st.lists(st.text(min_size=1, max_size=16), min_size=1, max_size=20),
    generation=st.sampled_from(["v2", "v3"]),
    fast_paths=st.booleans(),
    treatment_first=st.booleans(),
)
def test_raising_a_rollout_only_moves_users_into_treatment(
    users: list[str], generation: str, fast_paths: bool, treatment_first: bool
) -> None:
    stages = [rollout(w, generation, fast_paths, treatment_first) for w in (10, 25, 50, 100)]
    for user in users:
        served = [
            evaluate(
                s, "f", {"targetingKey": user}, default=None, expected_type=bool, now=NOW
            ).value
            for s in stages
        ]
        first_on = served.index(True)  # 100% always serves the treatment
        assert served[first_on:] == [True] * (len(served) - first_on), (user, served)
