"""The rule format: YAML and JSON, durations, cron, burn-rate pairs, and a clear coded error for
each kind of mistake."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reelout.alerts import rules
from reelout.alerts.rules import AlertRule, DigestRule, RuleError
from reelout.errors import BadRequest

GOOD: dict[str, Any] = {
    "id": "error-rate",
    "signal": {"metric": "error_rate", "scope": {"flag": "*"}, "window": "5m"},
    "condition": {"op": ">", "threshold": 0.05, "min_denominator": 200},
}

YAML = """
alert_rules:
  - id: error-rate
    signal: {metric: error_rate, scope: {flag: "*"}, window: 5m}
    condition: {op: ">", threshold: 0.05, min_denominator: 200}
    for: 0s
    keep_firing_for: 10m
    severity: page
  - id: daily
    kind: digest
    schedule: "0 9 * * *"
    signal: {metric: upload_success_rate, window: 24h}
routing:
  group_wait: 0s
"""


def test_yaml_and_json_read_the_same() -> None:
    from_yaml = rules.parse_document(rules.load_text(YAML))
    as_json = from_yaml.model_dump_json(by_alias=True)
    from_json = rules.parse_document(rules.load_text(as_json))
    assert from_json == from_yaml
    alert, digest = from_yaml.alert_rules
    assert isinstance(alert, AlertRule) and isinstance(digest, DigestRule)
    assert alert.keep_firing_for == timedelta(minutes=10) and alert.for_ == timedelta(0)
    assert rules.dump(digest)["signal"]["window"] == "24h"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("0s", 0), ("45s", 45), ("5m", 300), ("1h30m", 5400), ("24h", 86400), ("2d", 172800),
     ("1w", 604800), (90, 90)],
)  # fmt: skip
def test_durations(text: str | int, seconds: int) -> None:
    assert rules.parse_duration(text) == timedelta(seconds=seconds)


@given(st.integers(min_value=0, max_value=90 * 86400))
def test_a_duration_spelled_out_reads_back_the_same(seconds: int) -> None:
    value = timedelta(seconds=seconds)
    assert rules.parse_duration(rules.spell_duration(value)) == value


def bad(**changes: Any) -> dict[str, Any]:
    out = {**GOOD, **changes}
    return {k: v for k, v in out.items() if v is not None}


@pytest.mark.parametrize(
    ("rule", "code", "where"),
    [
        (bad(signal={"metric": "error_rate", "window": "5x"}), "INVALID_DURATION", "signal.window"),
        (bad(signal={"metric": "error_rate", "window": "-5m"}), "INVALID_DURATION", "signal.window"),
        (bad(signal={"metric": "error_rate", "window": "365d"}), "INVALID_DURATION", "signal.window"),
        (bad(signal={"metric": "error_rate"}), "WINDOW_REQUIRED", "alert_rules[0]"),
        (bad(condition=None), "CONDITION_REQUIRED", "alert_rules[0]"),
        (bad(kind="digest", schedule="0 25 * * *"), "INVALID_CRON", "schedule"),
        (bad(annotations={"summary": "{{ value"}), "INVALID_TEMPLATE", "annotations.summary"),
        (bad(labels={"alertname": "x"}), "RESERVED_LABEL", "labels"),
        (bad(id="Not An Id"), "INVALID_RULE", "alert_rules[0].id"),
        (bad(condition={"op": "~", "threshold": 1}), "INVALID_RULE", "condition.op"),
        (bad(condition={"op": ">", "threshold": "NaN"}), "INVALID_RULE", "condition.threshold"),
        (bad(condition={"op": ">", "threshold": 1, "min_denominator": -1}), "INVALID_RULE",
         "condition.min_denominator"),
        (bad(severity="critical"), "INVALID_RULE", "severity"),
        (bad(no_data="maybe"), "INVALID_RULE", "no_data"),
        (bad(frequency="5m"), "INVALID_RULE", "frequency"),
        (bad(condition=None, burn_rate={"objective": 0.99, "windows": [
            {"long": "5m", "short": "1h", "factor": 14.4}]}), "INVALID_BURN_WINDOW", "burn_rate"),
    ],
)  # fmt: skip
def test_each_mistake_has_its_code_and_place(rule: dict[str, Any], code: str, where: str) -> None:
    with pytest.raises(RuleError) as caught:
        rules.parse_document({"alert_rules": [rule]})
    error = caught.value
    assert error.status == 422 and error.code == code
    assert where in error.message, error.message
    assert error.details["errors"][0]["loc"].endswith(where) or where in error.message


def test_two_rules_with_one_id_are_refused() -> None:
    with pytest.raises(RuleError) as caught:
        rules.parse_document([GOOD, GOOD])
    assert caught.value.code == "DUPLICATE_RULE_ID"


@pytest.mark.parametrize("text", ["{not json", "a: [1, 2", "a: &x [1]\nb: *x", "[" * 5000])
def test_unreadable_text_is_a_400(text: str) -> None:
    with pytest.raises(BadRequest) as caught:
        rules.load_text(text)
    assert caught.value.code == "RULES_UNREADABLE"


def test_a_single_rule_or_a_list_is_a_document_too() -> None:
    assert [r.id for r in rules.parse_document(GOOD).alert_rules] == ["error-rate"]
    assert [r.id for r in rules.parse_document([GOOD]).alert_rules] == ["error-rate"]


def test_the_digest_schedule_is_cron_in_utc() -> None:
    at = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    assert rules.next_run("0 9 * * *", at) == datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    assert rules.next_run("0 9 * * *", at - timedelta(seconds=1)) == at
    assert rules.next_run("*/15 * * * *", at + timedelta(minutes=1)) == at + timedelta(minutes=15)
