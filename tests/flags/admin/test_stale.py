"""The stale-flag report: which flags serve one outcome to everyone (the pure analysis, checked
against the real evaluator) and which of them have been left alone for N days (over HTTP)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reelout.clock import ManualClock
from reelout.flags import evaluate, parse_flag_set
from reelout.flags.engine.stale import (
    ALL_EVALUATORS,
    evaluators_changed,
    one_variant,
    outcomes,
    refs,
)
from tests.flags.admin.conftest import StartClocked, put_set

ENVS = "/api/v1/environments"
DAY = 86400
ON_OFF = {"on": True, "off": False}


def flag(targeting: Any = None, default: str | None = "off", state: str = "ENABLED") -> Any:
    body: dict[str, Any] = {"state": state, "variants": ON_OFF, "defaultVariant": default}
    if targeting is not None:
        body["targeting"] = targeting
    return body


def single(targeting: Any, default: str | None = "off", **evaluators: Any) -> str | None:
    """The variant everyone gets, or None when the flag is not (surely) one-variant."""
    verdict = one_variant(flag(targeting, default), evaluators)
    return verdict.variant if verdict is not None else None


# ---- the pure analysis -------------------------------------------------------------------------


def test_a_flag_without_targeting_serves_its_default_variant_to_everyone() -> None:
    verdict = one_variant(flag(default="on"), {})
    assert verdict is not None
    assert (verdict.variant, verdict.value, verdict.why) == ("on", True, "no_targeting")
    assert one_variant(flag(targeting={}, default="off"), {}) == one_variant(flag(), {})


def test_a_disabled_flag_gives_every_app_its_code_default() -> None:
    verdict = one_variant(flag({"fractional": [["on", 50], ["off", 50]]}, state="DISABLED"), {})
    assert verdict is not None
    assert (verdict.variant, verdict.value, verdict.why) == (None, None, "disabled")


def test_an_if_whose_branches_name_one_variant_is_one_variant() -> None:
    cohort = {"in": [{"var": "cohort"}, ["beta"]]}
    assert single({"if": [cohort, "on", "on"]}) == "on"
    assert single({"if": [cohort, "on", {"if": [{"var": "x"}, "on", "on"]}]}) == "on"
    assert single({"if": [cohort, "on", "off"]}) is None
    # no else branch: the others get null, i.e. the default variant
    assert single({"if": [cohort, "off"]}) == "off"
    assert single({"if": [cohort, "on"]}) is None
    assert single({"if": [cohort, None, "off"]}) == "off"


def test_a_fractional_split_is_one_variant_only_at_100_percent_of_the_default() -> None:
    assert single({"fractional": [["on", 100], ["off", 0]]}, default="on") == "on"
    assert single({"fractional": [{"var": "user.id"}, ["on", 5], ["off", 0]]}, "on") == "on"
    assert single({"fractional": [["on"]]}, default="on") == "on"  # weight 1 when left out
    assert single({"fractional": [["on", 99], ["off", 1]]}, default="on") is None
    # without a targeting key fractional gives null: those users get the default variant
    assert single({"fractional": [["on", 100], ["off", 0]]}, default="off") is None


def test_refs_are_followed_and_anything_computed_is_not_trusted() -> None:
    assert single({"$ref": "same"}, same={"if": [{"var": "x"}, "off", "off"]}) == "off"
    assert single({"if": [{"$ref": "beta"}, "on", "on"]}, "on", beta={"var": "b"}) == "on"
    assert single({"$ref": "missing"}) is None
    assert single({"var": "variant"}) is None
    assert single({"if": [{"var": "x"}, "on", {"cat": ["o", "n"]}]}, "on") is None
    assert single({"fractional": [[{"var": "v"}, 100]]}, "on") is None
    assert single({"if": [{"var": "x"}, "nope", "nope"]}) is None  # not a variant: an error
    assert single({"if": [{"var": "x"}, "on", "on"]}, default=None) == "on"
    assert single({"if": [{"var": "x"}, None, None]}, default=None) is None  # code default
    assert outcomes({"==": [1, 1]}, {}) is None


def test_boolean_results_name_the_true_and_false_variants() -> None:
    variants = {"true": "yes", "false": "no"}
    rule = {"if": [{"var": "x"}, True, True]}
    verdict = one_variant(
        {"state": "ENABLED", "variants": variants, "defaultVariant": "true", "targeting": rule}, {}
    )
    assert verdict is not None and (verdict.variant, verdict.value) == ("true", "yes")


def test_the_evaluators_a_rule_uses_and_a_patch_changes() -> None:
    rule = {"if": [{"$ref": "a"}, {"fractional": [{"$ref": "b"}, ["on", 1]]}, "off"]}
    assert refs(rule) == {"a", "b"}
    assert refs({"if": [{"var": "x"}, "on", "off"]}) == set()
    patch = [
        {"op": "replace", "path": "/$evaluators/a/in/1", "value": []},
        {"op": "move", "from": "/$evaluators/x~1y", "path": "/flags/f"},
        {"op": "add", "path": "/flags/g", "value": {}},
    ]
    assert evaluators_changed(patch) == {"a", "x/y"}
    assert evaluators_changed([{"op": "add", "path": "/$evaluators", "value": {}}]) == {
        ALL_EVALUATORS
    }
    assert evaluators_changed([{"op": "replace", "path": "", "value": {}}]) == {ALL_EVALUATORS}


# ---- soundness against the real evaluator (Hypothesis) -----------------------------------------

NAMES = st.sampled_from(["on", "off", "other", None])
CONDITIONS = st.sampled_from(
    [
        {"in": [{"var": "cohort"}, ["beta"]]},
        {"==": [{"var": "plan"}, "pro"]},
        {"var": "flag"},
        {"sem_ver": [{"var": "version"}, ">=", "1.2.0"]},
    ]
)
BUCKETS = st.lists(st.tuples(NAMES, st.integers(0, 3)), min_size=1, max_size=3)


def _rules() -> st.SearchStrategy[Any]:
    leaves = NAMES | st.just({"var": "variant"})

    def grow(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        branch = st.lists(st.tuples(CONDITIONS, inner), min_size=1, max_size=2)
        ifs = st.builds(
            lambda pairs, other: {"if": [x for pair in pairs for x in pair] + other},
            branch,
            st.lists(inner, max_size=1),
        )
        splits = st.builds(
            lambda key, buckets: {"fractional": key + [[n, w] for n, w in buckets]},
            st.sampled_from([[], [{"var": "user"}]]),
            BUCKETS,
        )
        return ifs | splits

    return st.recursive(leaves, grow, max_leaves=6)


CONTEXTS = st.fixed_dictionaries(
    {},
    optional={
        "targetingKey": st.sampled_from(["u1", "u2", "u3", "u4", "u5", "u6"]),
        "cohort": st.sampled_from(["beta", "control"]),
        "plan": st.sampled_from(["pro", "free"]),
        "flag": st.booleans(),
        "version": st.sampled_from(["1.0.0", "1.3.0", "bad"]),
        "user": st.sampled_from(["a", "b", "c", "d"]),
        "variant": st.sampled_from(["on", "off", "x"]),
    },
)


@settings(max_examples=400, deadline=None)
@given(
    rule=_rules(),
    default=st.sampled_from(["on", "off", None]),
    state=st.sampled_from(["ENABLED", "ENABLED", "DISABLED"]),
    contexts=st.lists(CONTEXTS, min_size=1, max_size=8),
)
def test_a_flag_judged_one_variant_serves_that_variant_to_every_context(
    rule: Any, default: str | None, state: str, contexts: list[dict[str, Any]]
) -> None:
    body = {"state": state, "variants": ON_OFF, "defaultVariant": default}
    if isinstance(rule, dict):
        body["targeting"] = rule
    verdict = one_variant(body, {})
    if verdict is None:
        return
    compiled = parse_flag_set({"flags": {"f": body}})
    for context in contexts:
        got = evaluate(compiled, "f", context, default="code", expected_type=bool, now=0.0)
        if verdict.variant is None:
            assert (got.variant, got.value) == (None, "code")
        else:
            assert (got.variant, got.value) == (verdict.variant, verdict.value), context


# ---- the report over HTTP ----------------------------------------------------------------------

REPORTED = {
    "static_on": flag(default="on"),
    "rolled_out": flag({"fractional": [["on", 100], ["off", 0]]}, default="on"),
    "same_branches": flag({"if": [{"$ref": "is_beta"}, "on", "on"]}, default="on"),
    "killed": flag({"fractional": [["on", 50], ["off", 50]]}, state="DISABLED"),
}
NOT_REPORTED = {
    "live_rollout": flag({"fractional": [["on", 50], ["off", 50]]}),
    "beta_only": flag({"if": [{"$ref": "is_beta"}, "on", "off"]}),
    "rolled_out_but_default_off": flag({"fractional": [["on", 100], ["off", 0]]}),
}
STALE_SET = json.dumps(
    {
        "flags": {**REPORTED, **NOT_REPORTED},
        "$evaluators": {"is_beta": {"in": [{"var": "cohort"}, ["beta"]]}},
    }
)


@pytest.fixture
def live(start_clocked: StartClocked, clock: ManualClock) -> tuple[httpx.Client, ManualClock]:
    _, api = start_clocked()
    return api, clock


def stale(api: httpx.Client, env: str = "production", **query: Any) -> dict[str, Any]:
    reply = api.get(f"{ENVS}/{env}/flags/stale", params=query)
    assert reply.status_code == 200, reply.text
    report: dict[str, Any] = reply.json()
    return report


def test_flags_at_one_variant_for_n_days_are_ready_to_remove(
    live: tuple[httpx.Client, ManualClock],
) -> None:
    api, clock = live
    written_at = clock.now()
    put_set(api, "production", STALE_SET)
    clock.advance(30 * DAY - 1)
    assert stale(api, days=30)["flags"] == []

    clock.advance(1)
    report = stale(api, days=30)
    assert (report["environment"], report["days"], report["revision"]) == ("production", 30, 1)
    found = {f["key"]: f for f in report["flags"]}
    assert sorted(found) == sorted(REPORTED)
    assert {key: (f["variant"], f["value"], f["why"]) for key, f in found.items()} == {
        "static_on": ("on", True, "no_targeting"),
        "rolled_out": ("on", True, "one_variant_targeting"),
        "same_branches": ("on", True, "one_variant_targeting"),
        "killed": (None, None, "disabled"),
    }
    assert all(datetime.fromisoformat(f["since"]) == written_at for f in found.values())
    assert {f["since_revision"] for f in found.values()} == {1}
    assert stale(api)["flags"] == report["flags"]  # REELOUT_FLAG_STALE_DAYS: 30 by default
    assert stale(api, env="development")["flags"] == []


def test_a_change_to_a_flag_or_to_an_evaluator_it_uses_restarts_its_clock(
    live: tuple[httpx.Client, ManualClock],
) -> None:
    api, clock = live
    put_set(api, "production", STALE_SET)
    clock.advance(20 * DAY)
    api.patch(f"{ENVS}/production/flags/static_on", json={"metadata": {"owner": "video"}})
    evaluators = {"is_beta": {"in": [{"var": "cohort"}, ["beta", "staff"]]}}
    document = json.loads(STALE_SET) | {"$evaluators": evaluators}
    document["flags"]["static_on"]["metadata"] = {"owner": "video"}
    put_set(api, "production", json.dumps(document))
    clock.advance(10 * DAY)

    keys = [f["key"] for f in stale(api, days=30)["flags"]]
    assert keys == ["killed", "rolled_out"]  # static_on and same_branches changed on day 20
    later = {f["key"]: f for f in stale(api, days=10)["flags"]}
    assert sorted(later) == sorted(REPORTED)
    assert later["static_on"]["since_revision"] == 2
    assert later["same_branches"]["since_revision"] == 3  # its evaluator changed
    assert later["rolled_out"]["since_revision"] == 1


def test_the_default_period_is_a_setting(start_clocked: StartClocked, clock: ManualClock) -> None:
    _, api = start_clocked(flag_stale_days=7)
    put_set(api, "production", STALE_SET)
    clock.advance(7 * DAY - 1)
    assert stale(api)["days"] == 7 and stale(api)["flags"] == []
    clock.advance(1)
    assert len(stale(api)["flags"]) == len(REPORTED)


def test_bad_report_requests_get_clear_errors(live: tuple[httpx.Client, ManualClock]) -> None:
    api, _ = live
    zero = api.get(f"{ENVS}/production/flags/stale", params={"days": 0})
    assert zero.status_code == 422 and zero.json()["code"] == "INVALID_REQUEST"
    unknown = api.get(f"{ENVS}/staging/flags/stale")
    assert unknown.status_code == 404 and unknown.json()["code"] == "UNKNOWN_ENVIRONMENT"
