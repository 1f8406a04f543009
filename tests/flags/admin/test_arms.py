"""A staged rollout's arms: treatment, matched control and the excluded rest in one split whose
buckets, under the real evaluation engine, only move units the way the layout promises."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reelout.errors import ReeloutError
from reelout.flags import evaluate, parse_flag_set
from reelout.flags.admin.arms import (
    MAX_SERVED_KEY,
    Arms,
    arms_of,
    set_rollout_arms,
    set_variant_for_everyone,
    shares,
)
from reelout.flags.engine import validation
from reelout.flags.engine.fractional import bucket_of, shorthand_hash
from reelout.telemetry.events import Exposure
from reelout.variant_keys import excluded_variant, rollout_suffix

FLAG: dict[str, Any] = {
    "state": "ENABLED",
    "variants": {"on": True, "off": False},
    "defaultVariant": "off",
}
EXCLUDED = "off~excluded"


def armed(percent: int, flag: dict[str, Any] = FLAG) -> dict[str, Any]:
    changed = copy.deepcopy(flag)
    set_rollout_arms(changed, "f", Arms("on", "off", percent))
    return changed


def served(flag: dict[str, Any], units: list[str], key: str = "f") -> dict[str, tuple[str, Any]]:
    """unit -> (variant, value) as the real engine resolves the flag for it."""
    compiled = parse_flag_set({"flags": {key: flag}})
    out = {}
    for unit in units:
        got = evaluate(
            compiled, key, {"targetingKey": unit}, default=None, expected_type=bool, now=0
        )
        assert got.variant is not None, got
        out[unit] = (got.variant, got.value)
    return out


def test_the_layout_puts_treatment_first_and_control_last() -> None:
    assert armed(10)["targeting"] == {"fractional": [["on", 10], [EXCLUDED, 80], ["off", 10]]}
    assert armed(50)["targeting"] == {"fractional": [["on", 50], [EXCLUDED, 0], ["off", 50]]}
    assert armed(75)["targeting"] == {"fractional": [["on", 75], [EXCLUDED, 0], ["off", 25]]}
    assert armed(100)["targeting"] == {"fractional": [["on", 100], [EXCLUDED, 0], ["off", 0]]}
    assert armed(10)["variants"] == {"on": True, "off": False, EXCLUDED: False}
    assert [shares(p).excluded for p in (1, 49, 50, 51)] == [98, 2, 0, 0]
    assert all(sum(vars(shares(p)).values()) == 100 for p in range(1, 101))


def test_an_armed_flag_is_a_valid_flag_set_and_reads_back() -> None:
    for percent in (1, 10, 50, 99, 100):
        flag = armed(percent)
        validation.check({"flags": {"f": flag}})
        assert arms_of(flag) == Arms("on", "off", percent)
    assert arms_of(FLAG) is None
    assert arms_of({**FLAG, "targeting": {"fractional": [["on", 10], ["off", 90]]}}) is None
    tampered = armed(10)
    tampered["targeting"]["fractional"][2][1] = 20
    assert arms_of(tampered) is None


def test_excluded_units_get_the_controls_value_under_their_own_variant() -> None:
    units = [f"u{n}" for n in range(3000)]
    got = served(armed(10), units)
    by_variant: dict[str, int] = {}
    for variant, value in got.values():
        by_variant[variant] = by_variant.get(variant, 0) + 1
        assert value is (variant == "on")
    assert set(by_variant) == {"on", "off", EXCLUDED}
    assert abs(by_variant["on"] - 300) < 90 and abs(by_variant["off"] - 300) < 90


def test_a_string_flags_excluded_variant_copies_the_control_value() -> None:
    flag: dict[str, Any] = {
        "state": "ENABLED",
        "variants": {"a": "mp4", "b": "hls"},
        "defaultVariant": "a",
    }
    set_rollout_arms(flag, "player", Arms("b", "a", 20))
    assert flag["variants"][excluded_variant("a")] == "mp4"
    assert excluded_variant("a") == "a~excluded"


def test_the_arms_replace_any_other_targeting() -> None:
    ruled = {**FLAG, "targeting": {"if": [{"var": "beta"}, "on", "off"]}}
    assert armed(10, ruled)["targeting"] == armed(10)["targeting"]


@pytest.mark.parametrize(
    ("treatment", "control", "percent", "code"),
    [
        ("on", "off", 0, "INVALID_PERCENT"),
        ("on", "off", 101, "INVALID_PERCENT"),
        ("on", "off", True, "INVALID_PERCENT"),
        ("on", "nope", 10, "UNKNOWN_VARIANT"),
        ("nope", "off", 10, "UNKNOWN_VARIANT"),
        ("on", "on", 10, "SAME_ARMS"),
    ],
)
def test_bad_arms_are_refused_and_change_nothing(
    treatment: str, control: str, percent: int, code: str
) -> None:
    flag = copy.deepcopy(FLAG)
    with pytest.raises(ReeloutError) as refused:
        set_rollout_arms(flag, "f", Arms(treatment, control, percent))
    assert refused.value.code == code
    assert flag == FLAG


def test_served_keys_are_at_most_the_telemetrys_variant_limit() -> None:
    """`<variant>~r<id>` and `<control>~excluded` must fit in an event's variant (255)."""
    limit = Exposure.model_fields["variant"].metadata
    assert any(getattr(rule, "max_length", None) == MAX_SERVED_KEY for rule in limit)
    for name, fits in (("c" * (MAX_SERVED_KEY - 9), True), ("c" * (MAX_SERVED_KEY - 8), False)):
        flag = {**FLAG, "variants": {"on": True, name: False}, "defaultVariant": name}
        split = Arms("on", name, 10, rollout_suffix(1234567))  # "~r1234567": 9 characters
        if fits:
            set_rollout_arms(flag, "f", split)
            assert max(len(variant) for variant in flag["variants"]) == MAX_SERVED_KEY
            continue
        with pytest.raises(ReeloutError) as refused:
            set_rollout_arms(flag, "f", split)
        assert refused.value.code == "VARIANT_KEY_TOO_LONG" and refused.value.status == 400
        assert refused.value.details == {"max_chars": MAX_SERVED_KEY}


def test_the_treatment_may_not_be_the_controls_excluded_variant() -> None:
    flag = armed(10)
    with pytest.raises(ReeloutError) as refused:
        set_rollout_arms(flag, "f", Arms(EXCLUDED, "off", 20))
    assert refused.value.code == "SAME_ARMS"


def test_a_rollouts_arms_are_served_under_its_own_keys_with_the_plain_values() -> None:
    flag = copy.deepcopy(FLAG)
    split = Arms("on", "off", 10, rollout_suffix(7))
    set_rollout_arms(flag, "f", split)
    assert (split.served_treatment, split.served_control) == ("on~r7", "off~r7")
    assert flag["targeting"] == {"fractional": [["on~r7", 10], [EXCLUDED, 80], ["off~r7", 10]]}
    assert flag["variants"] == {"on": True, "off": False, EXCLUDED: False, **{
        "on~r7": True, "off~r7": False}}  # fmt: skip
    assert flag["defaultVariant"] == "off"
    validation.check({"flags": {"f": flag}})
    assert arms_of(flag) == split
    got = served(flag, [f"u{n}" for n in range(1000)])
    assert {variant for variant, _ in got.values()} == {"on~r7", "off~r7", EXCLUDED}
    assert all(value is (variant == "on~r7") for variant, value in got.values())


@pytest.mark.parametrize(("served_to_all", "value"), [("off", False), ("on", True)])
def test_the_end_of_a_rollout_serves_one_plain_variant_and_drops_the_rollouts_own(
    served_to_all: str, value: bool
) -> None:
    flag = copy.deepcopy(FLAG)
    split = Arms("on", "off", 100, rollout_suffix(7))
    set_rollout_arms(flag, "f", split)
    set_variant_for_everyone(flag, "f", served_to_all, split)
    assert flag == {**FLAG, "defaultVariant": served_to_all}
    assert set(served(flag, [f"u{n}" for n in range(50)]).values()) == {(served_to_all, value)}


def test_control_for_everyone_serves_the_control_to_every_unit() -> None:
    flag = armed(30)
    flag["state"] = "DISABLED"  # killed meanwhile: the rollback still serves the control
    set_variant_for_everyone(flag, "f", "off", Arms("on", "off", 30))
    assert flag == {**FLAG, "state": "ENABLED"}
    got = served(flag, [f"u{n}" for n in range(200)])
    assert set(got.values()) == {("off", False)}
    with pytest.raises(ReeloutError) as refused:
        set_variant_for_everyone(flag, "f", "nope", Arms("on", "off", 30))
    assert refused.value.code == "UNKNOWN_VARIANT"


# What holds as the percentage rises from p to p' (p < p'), unit by unit, under real evaluation:
# 1. treatment at p  -> treatment at p';
# 2. control at p    -> control at p' when p' <= 50, else control or treatment (never excluded);
# 3. excluded at p   -> excluded, treatment or control (never the other way round: by 1 and 2);
# 4. from 50 on nobody is excluded, at 100 everyone is in treatment;
# 5. up to 50 the arms get the same share of the hash range (matched).

unit_keys = st.lists(st.text(min_size=1, max_size=24), min_size=1, max_size=40, unique=True)
rising = st.lists(st.integers(1, 100), min_size=2, max_size=8, unique=True).map(sorted)
flag_keys = st.sampled_from(["f", "use_tus_upload", "new-upload-pipeline", "ключ"])


suffixes = st.sampled_from(["", rollout_suffix(7), rollout_suffix(12345)])


@given(units=unit_keys, percents=rising, key=flag_keys, suffix=suffixes)
def test_raising_the_percentage_moves_units_only_forward(
    units: list[str], percents: list[int], key: str, suffix: str
) -> None:
    """Under the rollout's own keys (`on~r7`, `off~r7`) as under the plain names (a rollout
    made before the arms had keys of their own)."""
    on, off = "on" + suffix, "off" + suffix
    before: dict[str, tuple[str, Any]] | None = None
    previous = 0
    for percent in percents:
        flag = copy.deepcopy(FLAG)
        set_rollout_arms(flag, key, Arms("on", "off", percent, suffix))
        now = served(flag, units, key)
        for unit, (variant, _) in now.items():
            if percent >= 50:
                assert variant != EXCLUDED
            if percent == 100:
                assert variant == on
            if before is None:
                continue
            was = before[unit][0]
            if was == on:
                assert variant == on, f"{unit} left treatment going {previous} -> {percent}"
            if was == off:
                allowed = {off} if percent <= 50 else {off, on}
                assert variant in allowed, f"{unit} left control going {previous} -> {percent}"
        before, previous = now, percent


@given(percent=st.integers(1, 100), units=unit_keys)
def test_each_arm_is_the_range_of_the_hash_the_layout_names(percent: int, units: list[str]) -> None:
    split = shares(percent)
    got = served(armed(percent), units)
    for unit, (variant, _) in got.items():
        hashed = shorthand_hash("v3", "f", unit)
        assert hashed is not None
        bucket = bucket_of(hashed, 100)
        expected = (
            "on"
            if bucket < split.treatment
            else EXCLUDED
            if bucket < split.treatment + split.excluded
            else "off"
        )
        assert variant == expected
    if percent <= 50:
        assert split.treatment == split.control
