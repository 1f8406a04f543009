"""The words of the KPI board and the Alerts page, directly: values in each metric's unit, the
verdict of a difference in the metric's direction, a rule in one line, and the Silence
prompt's answer read as a duration and a reason."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reelout.alerts.defaults import DEFAULT_RULES
from reelout.errors import BadRequest
from reelout.telemetry.metrics import METRICS
from reelout.web.alerts_page import rule_summary, silence_request
from reelout.web.kpi_page import shown, shown_difference, verdict

LABELS = {"alertname": "uploads", "environment": "production", "flag": "f", "variant": "on"}


def test_values_read_in_their_unit() -> None:
    assert shown(METRICS["upload_success_rate"], 0.97) == "97.0 %"
    assert shown(METRICS["upload_seconds_100mb"], 84.25) == "84.2 s"
    assert shown(METRICS["satisfaction"], 4.2149) == "4.21"
    assert shown(METRICS["video_startup_log_ms"], 7.6009) == "7.60"
    assert shown(METRICS["crash_rate"], None) == "—"
    assert shown_difference(METRICS["upload_success_rate"], 0.12) == "+12.0 pp"
    assert shown_difference(METRICS["upload_seconds_100mb"], -90.0) == "-90.0 s"


def test_the_verdict_follows_the_metrics_direction() -> None:
    higher, lower = METRICS["upload_success_rate"], METRICS["crash_rate"]
    assert verdict(higher, (0.1, 0.05, 0.15)) == "improvement"
    assert verdict(higher, (-0.1, -0.15, -0.05)) == "harm"
    assert verdict(lower, (0.01, 0.005, 0.02)) == "harm"  # more crashes
    assert verdict(lower, (-0.01, -0.02, -0.005)) == "improvement"


@given(st.floats(-1, 0), st.floats(0, 1))
def test_an_interval_holding_zero_is_no_clear_difference(lower: float, upper: float) -> None:
    for metric in METRICS.values():
        assert verdict(metric, ((lower + upper) / 2, lower, upper)) == "no clear difference"


def test_rules_read_in_one_line() -> None:
    by_id = {rule["id"]: rule for rule in DEFAULT_RULES}
    assert rule_summary(by_id["upload-failure-sustained"]) == (
        "upload_failure_rate (environment=*, flag=*, variant=*) > 3.00 % over 30m, "
        "at least 100 counted, held 30m"
    )
    assert rule_summary(by_id["upload-success-daily"]).endswith("reported at cron 0 9 * * *")


def test_the_answer_is_a_duration_then_why() -> None:
    made = silence_request("2h rolling back the uploader", LABELS)
    assert made.duration == timedelta(hours=2) and made.comment == "rolling back the uploader"
    assert {(m.name, m.value, m.op.value) for m in made.matchers} == {
        (name, value, "=") for name, value in LABELS.items()
    }


@pytest.mark.parametrize("answer", [None, "", "2h", "because", "soon why not", "2h   "])
def test_an_answer_without_both_is_refused(answer: str | None) -> None:
    with pytest.raises(BadRequest) as refused:
        silence_request(answer, LABELS)
    assert refused.value.code == "SILENCE_ANSWER_INVALID"
    assert "2h rolling back" in refused.value.message
