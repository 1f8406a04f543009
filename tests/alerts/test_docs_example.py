"""The alerts page's examples are real: the YAML document and the JSON rule are accepted by
the API as shown, and the YAML's templates render."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

from reelout.alerts import evaluator, rules
from reelout.alerts.evaluator import Observation
from reelout.alerts.rules import AlertRule
from tests.support.live import LiveServer

PAGE = Path(__file__).resolve().parents[2] / "docs" / "alerts.md"


def example(marker: str, language: str) -> str:
    text = PAGE.read_text(encoding="utf-8")
    section = text.split(f"<!-- {marker}:begin -->", 1)[1].split(f"<!-- {marker}:end -->", 1)[0]
    [block] = re.findall(rf"```{language}\n(.*?)```", section, flags=re.DOTALL)
    return block


def test_the_documented_document_and_rule_are_accepted(server: LiveServer) -> None:
    with server.client() as api:
        applied = api.post(
            "/api/v1/alerts/rules/apply",
            content=example("alert-rules-example", "yaml"),
            headers={"Content-Type": "application/yaml"},
        )
        assert applied.status_code == 200, applied.text
        assert applied.json()["created"] == ["upload-failure-canary", "error-budget-burn",
                                             "uploads-weekly"]  # fmt: skip
        rule = json.loads(example("alert-rule-json", "json"))
        created = api.post("/api/v1/alerts/rules", json=rule)
        assert created.status_code == 201, created.text
        assert api.get("/api/v1/alerts/routing").json()["inhibit"][0]["equal"] == ["flag"]


def test_the_documented_templates_render() -> None:
    document = rules.parse_document(rules.load_text(example("alert-rules-example", "yaml")))
    rule = document.alert_rules[0]
    assert isinstance(rule, AlertRule)
    key = (("environment", "production"), ("flag", "new-uploader"), ("variant", "on"))
    result = evaluator.evaluate(
        rule, {key: Observation(True, 0.061, 61, 1000)}, [], datetime(2026, 1, 1, tzinfo=UTC)
    )
    [inst] = result.instances
    assert inst.annotations["summary"] == "upload-failure-canary: 6.1% of uploads fail on on"
    assert inst.annotations["runbook"] == (
        "Roll back: reelout flags kill new-uploader --env production"
    )
