"""The Flags page's one-line targeting summaries and split bars (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from reelout.web.flag_rows import flag_split, one_line, slug

FLAG: dict[str, Any] = {"variants": {"on": True, "off": False}, "defaultVariant": "off"}


@pytest.mark.parametrize(
    ("rule", "line"),
    [
        (None, "no targeting"),
        ({}, "no targeting"),
        ({"if": [{"var": "$flags.beta_mode"}, "on", "off"]}, "if beta_mode → on, else off"),
        ({"if": [{"$ref": "is_beta"}, "on"]}, "if is_beta → on"),
        ({"fractional": [["on", 10], ["off", 90]]}, "fractional 10/90 (on/off) by targetingKey"),
        (
            {"fractional": [{"var": "email"}, ["a", 1], ["b", 2]]},
            "fractional 33.3/66.7 (a/b) by email",
        ),
        (
            {
                "if": [
                    {"in": [{"var": "cohort"}, ["beta"]]},
                    {"fractional": [["on", 1], ["off", 1]]},
                    "off",
                ]
            },
            "if cohort in [beta] → fractional 50/50 (on/off) by targetingKey, else off",
        ),
        (
            {
                "if": [
                    {"and": [{"==": [{"var": "plan"}, "pro"]}, {"!": {"var": "trial"}}]},
                    "on",
                    "off",
                ]
            },
            "if plan == pro and not trial → on, else off",
        ),
        ({"sem_ver": [{"var": "version"}, ">=", "2.0.0"]}, "sem_ver(…)"),
    ],
)
def test_a_rule_reads_in_one_line(rule: Any, line: str) -> None:
    assert one_line(rule) == line


def test_a_long_rule_is_cut_to_one_line() -> None:
    rule = {
        "if": [{"in": [{"var": "targetingKey"}, [f"user-{n}" for n in range(50)]]}, "on", "off"]
    }
    text = one_line(rule)
    assert len(text) == 90 and text.endswith("…")


def test_the_split_bar_shows_weights_as_percentages() -> None:
    split = flag_split({**FLAG, "targeting": {"fractional": [["on", 1], ["off", 3]]}})
    assert [(s.variant, s.percent, s.start) for s in split] == [
        ("on", 25.0, 0.0),
        ("off", 75.0, 25.0),
    ]
    assert [s.label for s in flag_split(FLAG)] == ["off 100%"], "no targeting: all on the default"
    ruled = {**FLAG, "targeting": {"if": [{"var": "beta"}, "on", "off"]}}
    assert flag_split(ruled) == [], "rules decide per user: no bar"


def test_a_flag_key_becomes_an_element_id() -> None:
    assert slug("use_tus_upload") == "use_tus_upload"
    assert slug("checkout.v2 new") == "checkout-v2-new"
