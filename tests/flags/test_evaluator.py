"""Unit tests of flag-set loading and evaluation: cycles, $ref, types, metadata, prerequisites."""

from __future__ import annotations

from typing import Any

import pytest

from reelout.flags import ErrorCode, FlagSetError, Reason, evaluate, parse_flag_set
from reelout.flags.engine.fractional import hash_v3, shorthand_hash

NOW = 1_800_000_000.0


def on_off(targeting: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    flag: dict[str, Any] = {
        "state": "ENABLED",
        "variants": {"on": True, "off": False},
        "defaultVariant": "off",
        **extra,
    }
    if targeting is not None:
        flag["targeting"] = targeting
    return flag


def test_static_flag_resolves_its_default_variant_as_static() -> None:
    flags = parse_flag_set({"flags": {"f": on_off()}})
    result = evaluate(flags, "f", {}, default=True, expected_type=bool, now=NOW)
    assert (result.value, result.variant, result.reason) == (False, "off", Reason.STATIC)


def test_unknown_flag_is_flag_not_found_with_the_callers_default() -> None:
    flags = parse_flag_set({"flags": {}})
    result = evaluate(flags, "nope", {}, default=True, expected_type=bool, now=NOW)
    assert (result.value, result.reason, result.error_code) == (
        True,
        Reason.ERROR,
        ErrorCode.FLAG_NOT_FOUND,
    )


def test_disabled_flag_gives_disabled_and_no_variant() -> None:
    flags = parse_flag_set({"flags": {"f": on_off(state="DISABLED")}})
    result = evaluate(flags, "f", {}, default=True, expected_type=bool, now=NOW)
    assert (result.value, result.variant, result.reason, result.error_code) == (
        True,
        None,
        Reason.DISABLED,
        None,
    )


@pytest.mark.parametrize(
    ("expected_type", "mismatch"),
    [(str, True), (int, True), (float, True), (dict, True), (bool, False)],
)
def test_type_mismatch(expected_type: type, mismatch: bool) -> None:
    flags = parse_flag_set({"flags": {"f": on_off()}})
    result = evaluate(flags, "f", {}, default="d", expected_type=expected_type, now=NOW)
    assert (result.error_code == ErrorCode.TYPE_MISMATCH) is mismatch
    if mismatch:
        assert (result.value, result.reason) == ("d", Reason.ERROR)


def test_integer_variant_serves_as_float_but_not_the_reverse() -> None:
    flags = parse_flag_set(
        {
            "flags": {
                "i": {"state": "ENABLED", "variants": {"a": 3}, "defaultVariant": "a"},
                "x": {"state": "ENABLED", "variants": {"a": 3.5}, "defaultVariant": "a"},
            }
        }
    )
    as_float = evaluate(flags, "i", {}, default=0.0, expected_type=float, now=NOW)
    assert as_float.value == 3.0 and isinstance(as_float.value, float)
    as_int = evaluate(flags, "x", {}, default=0, expected_type=int, now=NOW)
    assert as_int.error_code == ErrorCode.TYPE_MISMATCH


def test_invalid_context() -> None:
    flags = parse_flag_set({"flags": {"f": on_off()}})
    result = evaluate(flags, "f", {1: "x"}, default=True, expected_type=bool, now=NOW)  # type: ignore[dict-item]
    assert result.error_code == ErrorCode.INVALID_CONTEXT


def test_ref_resolves_to_evaluator_and_missing_ref_is_parse_error() -> None:
    doc = {
        "$evaluators": {"is_beta": {"==": [{"var": "cohort"}, "beta"]}},
        "flags": {
            "f": on_off({"if": [{"$ref": "is_beta"}, "on", "off"]}),
            "g": on_off({"if": [{"$ref": "missing"}, "on", "off"]}),
        },
    }
    flags = parse_flag_set(doc)
    hit = evaluate(flags, "f", {"cohort": "beta"}, default=False, expected_type=bool, now=NOW)
    assert (hit.value, hit.reason) == (True, Reason.TARGETING_MATCH)
    broken = evaluate(flags, "g", {}, default=True, expected_type=bool, now=NOW)
    assert broken.error_code == ErrorCode.PARSE_ERROR and "missing" in str(broken.error_message)
    assert set(flags.problems) == {"g"}


def test_ref_cycle_between_evaluators_is_a_parse_error() -> None:
    doc = {
        "$evaluators": {"a": {"!": {"$ref": "b"}}, "b": {"!": {"$ref": "a"}}},
        "flags": {"f": on_off({"if": [{"$ref": "a"}, "on", "off"]})},
    }
    assert "cycle" in parse_flag_set(doc).problems["f"]


def test_unknown_operator_is_parse_error() -> None:
    flags = parse_flag_set({"flags": {"f": on_off({"bogus": [1]})}})
    result = evaluate(flags, "f", {}, default=True, expected_type=bool, now=NOW)
    assert result.error_code == ErrorCode.PARSE_ERROR


def test_metadata_flag_wins_over_flag_set() -> None:
    doc = {
        "metadata": {"team": "video", "version": 1},
        "flags": {"f": on_off(metadata={"version": 2})},
    }
    result = evaluate(parse_flag_set(doc), "f", {}, default=True, expected_type=bool, now=NOW)
    assert dict(result.flag_metadata) == {"team": "video", "version": 2}


@pytest.mark.parametrize(
    ("flag", "pointer"),
    [
        ({"state": "ON", "variants": {"a": 1}}, "/flags/f/state"),
        ({"state": "ENABLED", "variants": {}}, "/flags/f/variants"),
        (
            {"state": "ENABLED", "variants": {"a": 1}, "defaultVariant": "b"},
            "/flags/f/defaultVariant",
        ),
    ],
)
def test_structural_faults_reject_the_document(flag: dict[str, Any], pointer: str) -> None:
    with pytest.raises(FlagSetError) as error:
        parse_flag_set({"flags": {"f": flag}})
    assert error.value.pointer == pointer


def test_unknown_fractional_generation_is_rejected() -> None:
    with pytest.raises(FlagSetError, match=r"reelout\.fractional"):
        parse_flag_set({"metadata": {"reelout.fractional": "v9"}, "flags": {}})


def beta_set() -> dict[str, Any]:
    beta = on_off({"if": [{"in": [{"var": "cohort"}, ["beta"]]}, "on", "off"]})
    follows = on_off({"if": [{"var": "$flags.beta_mode"}, "on", "off"]})
    follows_strict = on_off({"if": [{"===": [{"var": "$flags.beta_mode"}, True]}, "on", None]})
    return {
        "flags": {"beta_mode": beta, "use_tus_upload": follows, "use_media_kit": follows_strict}
    }


@pytest.mark.parametrize("fast_paths", [True, False])
@pytest.mark.parametrize("flag", ["use_tus_upload", "use_media_kit"])
def test_prerequisite_turns_dependants_on_for_the_same_user(fast_paths: bool, flag: str) -> None:
    flags = parse_flag_set(beta_set(), fast_paths=fast_paths)
    beta = evaluate(flags, flag, {"cohort": "beta"}, default=False, expected_type=bool, now=NOW)
    other = evaluate(flags, flag, {"cohort": "ga"}, default=False, expected_type=bool, now=NOW)
    assert (beta.value, other.value) == (True, False)


def test_disabled_prerequisite_reads_as_null() -> None:
    doc = beta_set()
    doc["flags"]["beta_mode"]["state"] = "DISABLED"
    flags = parse_flag_set(doc)
    result = evaluate(
        flags, "use_tus_upload", {"cohort": "beta"}, default=True, expected_type=bool, now=NOW
    )
    assert result.value is False


def test_prerequisite_cycle_is_rejected_naming_the_cycle() -> None:
    doc = {
        "flags": {
            "a": on_off({"if": [{"var": "$flags.b"}, "on", "off"]}),
            "b": on_off({"if": [{"var": "$flags.c"}, "on", "off"]}),
            "c": on_off({"if": [{"!": {"var": "$flags.a"}}, "on", "off"]}),
        }
    }
    with pytest.raises(FlagSetError, match="prerequisite cycle: a -> b -> c -> a"):
        parse_flag_set(doc)


def test_self_prerequisite_is_a_cycle() -> None:
    with pytest.raises(FlagSetError, match="a -> a"):
        parse_flag_set({"flags": {"a": on_off({"if": [{"var": "$flags.a"}, "on", "off"]})}})


def test_top_level_fractional_reports_split() -> None:
    doc = {"flags": {"f": on_off({"fractional": [["on", 50], ["off", 50]]})}}
    result = evaluate(
        parse_flag_set(doc), "f", {"targetingKey": "u1"}, default=True, expected_type=bool, now=NOW
    )
    assert result.reason == Reason.SPLIT


def test_flagd_context_properties_are_injected() -> None:
    doc = {
        "flags": {
            "f": on_off(
                {
                    "if": [
                        {
                            "and": [
                                {"==": [{"var": "$flagd.flagKey"}, "f"]},
                                {"==": [{"var": "$flagd.timestamp"}, int(NOW)]},
                            ]
                        },
                        "on",
                        "off",
                    ]
                }
            )
        }
    }
    result = evaluate(parse_flag_set(doc), "f", {}, default=False, expected_type=bool, now=NOW)
    assert result.value is True


def test_v3_encoding_treats_integral_floats_as_ints() -> None:
    assert hash_v3(1.0) == hash_v3(1)
    assert hash_v3(-0.0) == hash_v3(0)
    assert hash_v3(1.5) != hash_v3(1)
    assert hash_v3({"b": 1, "a": 2.0}) == hash_v3({"a": 2, "b": 1})


def test_v3_shorthand_hashes_the_array_of_flag_key_and_targeting_key() -> None:
    assert shorthand_hash("v3", "flag", "user-1") == hash_v3(["flag", "user-1"])
    assert shorthand_hash("v3", "flag", 7) is None


def test_prerequisite_flag_set_is_valid_flagd_json() -> None:
    import json
    from pathlib import Path

    import jsonschema
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT7

    specs = Path(__file__).resolve().parents[3] / "shared" / "specs"
    flags = json.loads((specs / "flagd-flags.schema.json").read_text(encoding="utf-8"))
    targeting = json.loads((specs / "flagd-targeting.schema.json").read_text(encoding="utf-8"))
    resource = Resource.from_contents(targeting, default_specification=DRAFT7)
    registry: Registry[Any] = Registry().with_resources(
        [(targeting["$id"], resource), ("./targeting.json", resource)]
    )
    validator = jsonschema.Draft7Validator(flags, registry=registry)
    assert list(validator.iter_errors(beta_set())) == []
    unknown_operator = {"flags": {"f": on_off({"if": [{"bogus": [1]}, "on", "off"]})}}
    assert list(validator.iter_errors(unknown_operator)) != []
