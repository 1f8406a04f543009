"""The digest's KPI table per flag and variant, its verdict and how notifiers show it."""

from __future__ import annotations

from datetime import UTC, datetime

from reelout.alerts import digest, payloads
from reelout.alerts.rules import DigestRule, parse_rule
from reelout.alerts.signals import SignalSample

AT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def rule() -> DigestRule:
    parsed = parse_rule({
        "id": "success-daily", "kind": "digest", "schedule": "0 9 * * *",
        "signal": {"metric": "upload_success_rate", "scope": {"flag": "*", "variant": "*"},
                   "window": "24h"},
        "condition": {"op": ">", "threshold": 0.98},
        "report": {"metrics": ["upload_failure_rate"]},
    })  # fmt: skip
    assert isinstance(parsed, DigestRule)
    return parsed


def s(variant: str, num: float, den: float) -> SignalSample:
    return SignalSample({"flag": "new-uploader", "variant": variant}, num, den)


def test_the_table_has_a_row_per_variant_and_a_verdict() -> None:
    report = digest.build(
        rule(),
        {
            "upload_success_rate": [s("on", 990, 1000), s("off", 950, 1000)],
            "upload_failure_rate": [s("on", 10, 1000), s("off", 50, 1000)],
        },
        AT,
    )
    assert [row.labels["variant"] for row in report.rows] == ["off", "on"]
    assert [row.met for row in report.rows] == [False, True]
    assert report.status == "not_met" and report.condition == "> 98%"
    text = payloads.digest_text(report)
    assert (
        "NOT met" in text and "flag=new-uploader variant=on | 99% (1000) | 1% (1000) | pass" in text
    )
    body = report.to_json()
    assert body["rows"][1]["values"]["upload_success_rate"]["value"] == 0.99


def test_no_samples_is_no_data() -> None:
    assert digest.build(rule(), {}, AT).status == "no_data"
    slack = payloads.slack_digest(digest.build(rule(), {}, AT))
    assert slack["text"].endswith("no data")
