"""The rollout percentage: a two-way `fractional` split set by one number, monotone in it."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from reelout.errors import ReeloutError
from reelout.flags import evaluate, parse_flag_set
from reelout.flags.admin.service import rollout_share, set_rollout_split
from tests.flags.admin.conftest import audit, put_set

PROD = "/api/v1/environments/production"
OFF_FLAG: dict[str, Any] = {
    "state": "ENABLED",
    "variants": {"on": True, "off": False},
    "defaultVariant": "off",
}
USERS = [f"user-{n}" for n in range(2000)]


def by_key(user: str) -> dict[str, Any]:
    return {"targetingKey": user}


def by_email(user: str) -> dict[str, Any]:
    return {"targetingKey": "same-for-all", "email": user}


def who_gets_on(flag: dict[str, Any], context: Callable[[str], dict[str, Any]]) -> set[str]:
    """The users the real evaluation engine gives "on"."""
    compiled = parse_flag_set({"flags": {"f": flag}})
    return {
        user
        for user in USERS
        if evaluate(compiled, "f", context(user), default=False, expected_type=bool, now=0).value
    }


def rolled(flag: dict[str, Any], percent: int, variant: str | None = None) -> dict[str, Any]:
    changed = copy.deepcopy(flag)
    set_rollout_split(changed, "f", percent, variant)
    return changed


@pytest.mark.parametrize(
    ("start", "context"),
    [
        (OFF_FLAG, by_key),  # no targeting: the split is made
        ({**OFF_FLAG, "targeting": {"fractional": [["off", 9], ["on", 1]]}}, by_key),
        (
            {**OFF_FLAG, "targeting": {"fractional": [{"var": "email"}, ["on", 5], ["off", 95]]}},
            by_email,
        ),
        # the template's rule: beta users get it; the split takes the rule's last branch
        ({**OFF_FLAG, "targeting": {"if": [{"var": "beta"}, "on", "off"]}}, by_key),
    ],
)
def test_raising_the_percentage_only_adds_users(
    start: dict[str, Any], context: Callable[[str], dict[str, Any]]
) -> None:
    previous: set[str] = set()
    for percent in (0, 10, 25, 50, 90, 100):
        flag = rolled(start, percent)
        on = who_gets_on(flag, context)
        assert previous <= on, f"raising to {percent}% took users away"
        assert abs(len(on) - percent * len(USERS) / 100) <= 0.05 * len(USERS)
        assert rollout_share(flag) == ("on", percent)
        previous = on


def test_the_split_keeps_its_order_and_bucketing_value() -> None:
    flag = {**OFF_FLAG, "targeting": {"fractional": [{"var": "email"}, ["off", 9], ["on", 1]]}}
    assert rolled(flag, 30)["targeting"] == {
        "fractional": [{"var": "email"}, ["off", 70], ["on", 30]]
    }
    nested = {
        **OFF_FLAG,
        "targeting": {"if": [{"var": "beta"}, {"fractional": [["on", 1], ["off", 1]]}, "off"]},
    }
    assert rolled(nested, 20)["targeting"]["if"][1] == {"fractional": [["on", 20], ["off", 80]]}


def test_a_rule_keeps_its_earlier_branches_and_splits_everyone_else() -> None:
    beta = {**OFF_FLAG, "targeting": {"if": [{"var": "beta"}, "on", "off"]}}
    assert rollout_share(beta) == ("on", 0.0)
    split = rolled(beta, 10)
    assert split["targeting"] == {
        "if": [{"var": "beta"}, "on", {"fractional": [["on", 10], ["off", 90]]}]
    }
    assert rolled(split, 25)["targeting"]["if"][2] == {"fractional": [["on", 25], ["off", 75]]}
    everyone_beta = who_gets_on(split, lambda user: {"targetingKey": user, "beta": True})
    assert everyone_beta == set(USERS), "the beta branch still gives every beta user the flag"


@pytest.mark.parametrize(
    ("flag", "code"),
    [
        (
            {**OFF_FLAG, "targeting": {"if": [{"var": "beta"}, "on", {"var": "fallback"}]}},
            "NOT_A_TWO_WAY_SPLIT",
        ),
        (
            {
                **OFF_FLAG,
                "variants": {"a": 1, "b": 2, "off": 0},
                "targeting": {"fractional": [["a", 1], ["b", 1], ["off", 1]]},
            },
            "NOT_A_TWO_WAY_SPLIT",
        ),
        ({**OFF_FLAG, "variants": {"a": 1, "b": 2, "off": 0}}, "ROLLOUT_VARIANT_REQUIRED"),
    ],
)
def test_what_a_percentage_cannot_set_is_refused_in_words(flag: dict[str, Any], code: str) -> None:
    with pytest.raises(ReeloutError) as refused:
        rolled(flag, 10)
    assert refused.value.code == code
    assert rollout_share(flag) is None


def test_the_api_sets_a_rollout_and_audits_it(api: httpx.Client) -> None:
    put_set(api, "production")
    made = api.put(f"{PROD}/flags/new_player", json=OFF_FLAG)
    assert made.status_code == 200, made.text
    reply = api.post(
        f"{PROD}/flags/new_player/rollout",
        json={"percent": 10},
        headers={"Reelout-Change-Reason": "phase 3"},
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["targeting"] == {"fractional": [["on", 10], ["off", 90]]}
    assert reply.headers["etag"] == '"production-r3"'
    [entry] = audit(api, action="rollout")
    assert (entry["flag"], entry["reason"], entry["actor"]) == (
        "new_player",
        "phase 3",
        "bootstrap",
    )

    same = api.post(f"{PROD}/flags/new_player/rollout", json={"percent": 10})
    assert same.headers["etag"] == '"production-r3"', "the same percentage makes no revision"
    for body, status, code in [
        ({"percent": 101}, 422, None),
        ({"percent": 10, "variant": "maybe"}, 400, "UNKNOWN_VARIANT"),
    ]:
        refused = api.post(f"{PROD}/flags/new_player/rollout", json=body)
        assert refused.status_code == status, refused.text
        if code:
            assert refused.json()["code"] == code
    three = {**OFF_FLAG, "variants": {"a": 1, "b": 2, "off": 0}}
    three["targeting"] = {"fractional": [["a", 1], ["b", 1], ["off", 1]]}
    assert api.put(f"{PROD}/flags/three_way", json=three).status_code == 200
    ruled = api.post(f"{PROD}/flags/three_way/rollout", json={"percent": 10})
    assert ruled.status_code == 409 and ruled.json()["code"] == "NOT_A_TWO_WAY_SPLIT"
    missing = api.post(f"{PROD}/flags/nope/rollout", json={"percent": 10})
    assert missing.status_code == 404 and missing.json()["code"] == "FLAG_NOT_FOUND"
