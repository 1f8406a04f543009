"""Rollout plans: the format of spec §4.1 read from YAML or JSON, its defaults, the seed's template,
and validation that names every problem with its path."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from reelout.rollouts.plan import Plan, PlanInvalid, load_plan, seed_template
from reelout.stats.compare import sample_size_per_arm
from reelout.telemetry.metrics import METRICS

HERE = Path(__file__).parent
SPEC_EXAMPLE = (HERE / "spec_4_1_plan.yaml").read_text(encoding="utf-8")  # copied verbatim

MINIMAL = """
flag: new-upload-pipeline
environment: production
treatment: "on"
control: {variation: "off"}
stages:
  - {percent: 10, min_duration: 2h}
  - {percent: 100, min_duration: 1d, monitor_only: true}
guardrails:
  - {metric: error_rate, role: guardrail, vs_control: {margin_abs: 0}}
"""


def problems(text: str) -> list[str]:
    with pytest.raises(PlanInvalid) as caught:
        load_plan(text)
    assert caught.value.code == "INVALID_PLAN" and caught.value.status == 400
    errors: list[str] = caught.value.details["errors"]
    for problem in errors:  # the message lists every problem too
        assert problem in caught.value.message
    return errors


def edited(**changes: object) -> str:
    """MINIMAL with top-level keys replaced (as JSON, which is YAML too)."""
    data = yaml.safe_load(MINIMAL)
    data.update(changes)
    return json.dumps(data)


# ---- reading ------------------------------------------------------------------------------------


def test_a_minimal_plan_takes_the_defaults() -> None:
    plan = load_plan(MINIMAL)
    assert plan.unit == "viewer_id" and plan.control.allocation == "matched"
    first, last = plan.stages
    assert first.min_duration == timedelta(hours=2) and first.max_duration is None
    assert first.warmup == timedelta(0) and first.min_units_per_arm == 0
    assert last.min_duration == timedelta(days=1) and last.monitor_only
    (guardrail,) = plan.guardrails
    assert guardrail.direction == "lower_is_better"  # the catalogue's direction for error_rate
    assert guardrail.lag == timedelta(0) and guardrail.min_events_per_arm == 0
    assert plan.health.max_data_lag == timedelta(minutes=10)
    assert plan.health.srm.p_threshold == 0.001 and plan.health.srm.min_units_per_arm == 8
    assert plan.health.no_traffic_after == timedelta(minutes=30)
    assert plan.on_insufficient_data.action == "extend_then_pause"
    assert plan.on_insufficient_data.extend_by == timedelta(hours=24)
    assert plan.stats.alpha == 0.05 and plan.stats.correction == "sidak"
    assert plan.stats.sequential.tuning_n == 5000
    assert plan.approvals.before_stage == [] and plan.notify == []


def test_a_guardrail_lag_defaults_to_the_metric_s_lag() -> None:
    text = edited(guardrails=[{"metric": "complaint_rate", "role": "signal",
                               "absolute": {"max": 0.05, "action": "hold"}}])  # fmt: skip
    assert load_plan(text).guardrails[0].lag == timedelta(
        minutes=METRICS["complaint_rate"].lag_minutes
    )


def test_durations_are_words_or_seconds() -> None:
    text = edited(stages=[{"percent": 10, "min_duration": 90, "max_duration": "1d",
                           "warmup": "15m"},
                          {"percent": 100, "min_duration": "90s", "monitor_only": True}])  # fmt: skip
    first, last = load_plan(text).stages
    assert first.min_duration == timedelta(seconds=90) and first.max_duration == timedelta(days=1)
    assert first.warmup == timedelta(minutes=15) and last.min_duration == timedelta(seconds=90)


def test_the_same_plan_reads_from_yaml_json_and_inside_a_rollout_wrapper() -> None:
    from_yaml = load_plan(MINIMAL)
    from_json = load_plan(json.dumps(yaml.safe_load(MINIMAL)))
    wrapped = load_plan(yaml.safe_dump({"rollout": yaml.safe_load(MINIMAL)}).encode())
    assert from_yaml == from_json == wrapped


def test_a_plan_round_trips_through_its_json() -> None:
    plan = seed_template("new-upload-pipeline", "production", "on", "off")
    dumped = plan.model_dump(mode="json")
    assert dumped["stages"][0]["min_duration"] == "2d"  # durations are spelled as words
    assert load_plan(json.dumps(dumped)) == plan


@st.composite
def plans(draw: st.DrawFn) -> str:
    """Valid plans: rising percents ending (or not) at a monitor-only 100, durations in seconds
    or words, guardrails with either margin."""
    percents = sorted(draw(st.sets(st.integers(1, 99), min_size=1, max_size=5)))
    stages: list[dict[str, object]] = []
    for percent in percents:
        low = draw(st.integers(1, 10 * 86400))
        stage: dict[str, object] = {"percent": percent, "min_duration": low,
                                    "warmup": draw(st.sampled_from(["0s", "5m", "1h30m"]))}  # fmt: skip
        if draw(st.booleans()):
            stage["max_duration"] = low + draw(st.integers(0, 86400))
        stages.append(stage)
    if draw(st.booleans()):
        stages.append({"percent": 100, "min_duration": "1d", "monitor_only": True})
    metrics = draw(st.lists(st.sampled_from(sorted(METRICS)), unique=True, max_size=4))
    guardrails = [
        {"metric": m, "role": draw(st.sampled_from(["critical", "guardrail", "signal", "info"])),
         "vs_control": {draw(st.sampled_from(["margin_abs", "margin_rel"])): draw(st.floats(0, 1))}}
        for m in metrics
    ]  # fmt: skip
    return edited(stages=stages, guardrails=guardrails)


@settings(max_examples=50, deadline=None)
@given(plans())
def test_any_valid_plan_round_trips_through_its_json(text: str) -> None:
    plan = load_plan(text)
    assert load_plan(json.dumps(plan.model_dump(mode="json"))) == plan


def test_the_spec_example_loads_once_given_its_environment_treatment_and_catalogue_names() -> None:
    """The §4.1 example predates the contract: it names no environment and no treatment, and two
    metrics by names the catalogue does not use. Refused as written, with exactly those problems;
    with them filled in, it loads."""
    assert sorted(problems(SPEC_EXAMPLE)) == [
        "environment: Field required",
        "guardrails[3].metric: 'playback_start_time_log_ms' is not a metric; the known metrics"
        f" are {', '.join(sorted(METRICS))}",
        "guardrails[4].metric: 'rebuffer_pct' is not a metric; the known metrics are"
        f" {', '.join(sorted(METRICS))}",
        "treatment: Field required",
    ]
    fixed = (
        SPEC_EXAMPLE.replace("  flag: new-upload-pipeline\n",
                             '  flag: new-upload-pipeline\n  environment: production\n'
                             '  treatment: "on"\n')
        .replace("playback_start_time_log_ms", "video_startup_log_ms")
        .replace("rebuffer_pct", "rebuffer_percentage")
    )  # fmt: skip
    plan = load_plan(fixed)
    assert load_plan(json.dumps(plan.model_dump(mode="json"))) == plan
    assert [s.percent for s in plan.stages] == [10, 25, 50, 100]
    assert plan.stages[2].max_duration == timedelta(hours=72) and plan.stages[3].monitor_only
    assert plan.stats.sequential.tuning_n == 20000
    assert plan.health.multiple_exposure_rate is not None
    assert plan.health.multiple_exposure_rate.action == "warn"
    by_metric = {g.metric: g for g in plan.guardrails}
    assert by_metric["crash_rate"].role == "critical"
    assert by_metric["upload_success_rate"].absolute is not None
    assert by_metric["upload_success_rate"].absolute.min == 0.95
    assert by_metric["rebuffer_percentage"].vs_control is not None
    assert by_metric["rebuffer_percentage"].vs_control.relative
    assert by_metric["complaint_rate"].evaluate_from_stage == 50
    assert by_metric["complaint_rate"].lag == timedelta(hours=6)
    assert plan.approvals.before_stage == [100] and plan.notify == ["slack:#video-rollouts"]


# ---- the seed's template ------------------------------------------------------------------------


def test_the_seed_template_is_the_seed_s_rollout() -> None:
    plan = seed_template("new-uploader", "staging", "tus", "legacy")
    assert (plan.flag, plan.environment, plan.treatment, plan.control.variation) == (
        "new-uploader", "staging", "tus", "legacy",
    )  # fmt: skip
    assert [s.percent for s in plan.stages] == [10, 25, 50, 100]
    assert [s.monitor_only for s in plan.stages] == [False, False, False, True]
    roles = {g.metric: g.role for g in plan.guardrails}
    assert roles == {
        "upload_success_rate": "guardrail",  # the seed's three criteria
        "error_rate": "guardrail",
        "complaint_rate": "guardrail",
        "crash_rate": "critical",  # plus crashes, startup time and rebuffering
        "video_startup_log_ms": "guardrail",
        "rebuffer_percentage": "signal",
    }
    by_metric = {g.metric: g for g in plan.guardrails}
    assert by_metric["upload_success_rate"].absolute is not None
    assert by_metric["upload_success_rate"].absolute.min == 0.95
    assert by_metric["error_rate"].absolute is not None
    assert by_metric["error_rate"].absolute.max == 0.02
    assert by_metric["complaint_rate"].absolute is not None
    assert by_metric["complaint_rate"].absolute.max == 0.05
    assert by_metric["complaint_rate"].evaluate_from_stage == 50
    assert plan.approvals.before_stage == [100]


def test_the_seed_s_minimum_units_come_from_the_f12_table() -> None:
    """Each stage's min_units_per_arm is a row of the spec's sample-size table (alpha 0.05, power 0.8),
    as the template's comments say."""
    plan = seed_template("f", "production", "on", "off")
    rows = [(0.02, 0.03), (0.97, 0.96), (0.05, 0.06)]  # error rate, upload success, complaints
    assert [s.min_units_per_arm for s in plan.stages[:3]] == [
        sample_size_per_arm(p1, p2) for p1, p2 in rows
    ]
    assert plan.stages[2].min_units_per_arm >= sample_size_per_arm(0.99, 0.985)  # crash-free row


def test_the_seed_template_refuses_a_treatment_equal_to_its_control() -> None:
    with pytest.raises(PlanInvalid, match=r"treatment: 'on' is also the control's variation"):
        seed_template("f", "production", "on", "on")


# ---- validation: every problem, with its path -----------------------------------------------------


def test_every_problem_is_listed_at_once() -> None:
    text = edited(
        treatment="off",
        stages=[{"percent": 50, "min_duration": "2h", "max_duration": "1h"},
                {"percent": 30, "min_duration": "0s"}],
        guardrails=[{"metric": "nope", "role": "guardrail", "vs_control": {"margin_abs": 0}}],
    )  # fmt: skip
    assert problems(text) == [
        "stages[1].min_duration: a stage lasts more than 0s",
        "guardrails[0].metric: 'nope' is not a metric; the known metrics are"
        f" {', '.join(sorted(METRICS))}",
        "treatment: 'off' is also the control's variation",
        "stages[0].max_duration: 1h is shorter than min_duration 2h",
        "stages[1].percent: 30 is not above the stage before's 50 (percents rise strictly)",
    ]


@pytest.mark.parametrize(
    ("stages", "problem"),
    [
        pytest.param(
            [{"percent": 10, "min_duration": "1h"}, {"percent": 10, "min_duration": "1h"}],
            "stages[1].percent: 10 is not above the stage before's 10 (percents rise strictly)",
            id="percents-rise-strictly",
        ),
        pytest.param(
            [{"percent": 0, "min_duration": "1h"}],
            "stages[0].percent: Input should be greater than or equal to 1",
            id="percent-at-least-1",
        ),
        pytest.param(
            [{"percent": 101, "min_duration": "1h"}],
            "stages[0].percent: Input should be less than or equal to 100",
            id="percent-at-most-100",
        ),
        pytest.param(
            [{"percent": 50, "min_duration": "1h", "monitor_only": True}],
            "stages[0].monitor_only: only the 100% stage is monitor-only (this one is 50%)",
            id="monitor-only-only-at-100",
        ),
        pytest.param(
            [{"percent": 100, "min_duration": "1h"}],
            "stages[0].monitor_only: at 100% everyone has the treatment and no control is left"
            " to compare with: set monitor_only: true",
            id="100-is-monitor-only",
        ),
        pytest.param(
            [{"percent": 10, "min_duration": "0s"}],
            "stages[0].min_duration: a stage lasts more than 0s",
            id="min-duration-positive",
        ),
        pytest.param(
            [{"percent": 10, "min_duration": "1h", "max_duration": 0}],
            "stages[0].max_duration: a stage lasts more than 0s",
            id="max-duration-positive",
        ),
        pytest.param(
            [{"percent": 10, "min_duration": "1d", "max_duration": "12h"}],
            "stages[0].max_duration: 12h is shorter than min_duration 24h",
            id="max-at-least-min",
        ),
        pytest.param(
            [{"percent": 10, "min_duration": "soon"}],
            "stages[0].min_duration: 'soon' is not a duration such as 30s, 5m, 1h30m or 24h",
            id="duration-words",
        ),
        pytest.param(
            [{"percent": 10, "min_duration": "1h", "min_units_per_arm": -1}],
            "stages[0].min_units_per_arm: Input should be greater than or equal to 0",
            id="units-not-negative",
        ),
        pytest.param(
            [{"percent": 10, "min_duration": "1h", "pause": True}],
            "stages[0].pause: Extra inputs are not permitted",
            id="unknown-field",
        ),
        pytest.param(
            [], "stages: List should have at least 1 item after validation, not 0", id="no-stage"
        ),
    ],
)
def test_stage_rules(stages: list[dict[str, object]], problem: str) -> None:
    assert problems(edited(stages=stages)) == [problem]


def _guardrail(**fields: object) -> str:
    return edited(guardrails=[{"metric": "error_rate", "role": "guardrail", **fields}])


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        pytest.param(
            {"vs_control": {"margin_abs": 0}, "metric": "errors"},
            "guardrails[0].metric: 'errors' is not a metric; the known metrics are "
            + ", ".join(sorted(METRICS)),
            id="unknown-metric-lists-the-known",
        ),
        pytest.param({}, "guardrails[0]: give vs_control, absolute or both", id="a-check"),
        pytest.param(
            {"vs_control": {}},
            "guardrails[0].vs_control: give exactly one of margin_abs, margin_rel",
            id="one-margin",
        ),
        pytest.param(
            {"vs_control": {"margin_abs": 0, "margin_rel": 0.1}},
            "guardrails[0].vs_control: give exactly one of margin_abs, margin_rel",
            id="not-two-margins",
        ),
        pytest.param(
            {"vs_control": {"margin_rel": -0.1}},
            "guardrails[0].vs_control.margin_rel: Input should be greater than or equal to 0",
            id="margin-not-negative",
        ),
        pytest.param(
            {"absolute": {"min": 0.9, "max": 0.99, "action": "hold"}},
            "guardrails[0].absolute: give exactly one of min, max",
            id="one-limit",
        ),
        pytest.param(
            {"absolute": {"max": 0.05, "action": "alert"}},
            "guardrails[0].absolute.action: Input should be 'rollback', 'hold' or 'pause'",
            id="actions",
        ),
        pytest.param(
            {"vs_control": {"margin_abs": 0}, "role": "blocker"},
            "guardrails[0].role: Input should be 'critical', 'guardrail', 'signal' or 'info'",
            id="roles",
        ),
        pytest.param(
            {"vs_control": {"margin_abs": 0}, "type": "mean"},
            "guardrails[0]: type mean does not match the metric error_rate, a proportion",
            id="type-matches-the-catalogue",
        ),
        pytest.param(
            {"vs_control": {"margin_abs": 0}, "evaluate_from_stage": 50},
            "guardrails[0].evaluate_from_stage: 50 is not a stage's percent (10, 100)",
            id="from-a-stage-of-the-plan",
        ),
    ],
)
def test_guardrail_rules(fields: dict[str, object], problem: str) -> None:
    assert problems(_guardrail(**fields)) == [problem]


def test_a_ratio_type_accepts_a_proportion_metric() -> None:
    """A proportion is the ratio whose units each count once: the spec's `type: ratio` on
    crash_rate, a proportion per session in the catalogue, is accepted."""
    assert (
        load_plan(_guardrail(type="ratio", vs_control={"margin_abs": 0})).guardrails[0].type
        == "ratio"
    )


def test_a_metric_is_watched_once() -> None:
    both = [{"metric": "error_rate", "role": "guardrail", "vs_control": {"margin_abs": 0}}] * 2
    assert problems(edited(guardrails=both)) == [
        "guardrails[1].metric: 'error_rate' is already watched by guardrails[0]"
    ]


def test_treatment_and_control_differ() -> None:
    assert problems(edited(treatment="off")) == ["treatment: 'off' is also the control's variation"]


def test_an_approval_names_a_stage() -> None:
    assert problems(edited(approvals={"before_stage": [50]})) == [
        "approvals.before_stage[0]: 50 is not a stage's percent (10, 100)"
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("flag: [unclosed", "the plan is neither valid YAML nor JSON"),
        ('{"flag": ', "the plan is neither valid YAML nor JSON"),
        ("- a list", "a plan is a mapping"),
        ("base: &b {flag: x}\nother: *b", "aliases (*name) are not accepted"),
    ],
)
def test_unreadable_text_is_an_invalid_plan(text: str, message: str) -> None:
    with pytest.raises(
        PlanInvalid, match=message.replace("(", r"\(").replace(")", r"\)").replace("*", r"\*")
    ) as caught:
        load_plan(text)
    assert caught.value.code == "INVALID_PLAN"


def test_the_plan_model_refuses_what_load_plan_refuses() -> None:
    data = yaml.safe_load(edited(treatment="off"))
    with pytest.raises(ValueError, match="is also the control's variation"):
        Plan.model_validate(data)
