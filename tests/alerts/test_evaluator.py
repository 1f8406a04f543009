"""The alert state machine on an injected clock: `for` resets, `keep_firing_for` holds, every
no-data policy, burn-rate windows, identities; table cases and Hypothesis properties."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reelout.alerts import evaluator
from reelout.alerts.evaluator import NO_DATA, Instance, Observation, State
from reelout.alerts.rules import AlertRule, parse_rule
from reelout.alerts.signals import SignalSample

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)
KEY = (("flag", "new-uploader"), ("variant", "on"))


def rule(**changes: Any) -> AlertRule:
    base: dict[str, Any] = {
        "id": "upload-failure",
        "signal": {"metric": "upload_failure_rate",
                   "scope": {"flag": "new-uploader", "variant": "on"}, "window": "30m"},
        "condition": {"op": ">", "threshold": 0.03, "min_denominator": 100},
    }  # fmt: skip
    base.update(changes)
    parsed = parse_rule(base)
    assert isinstance(parsed, AlertRule)
    return parsed


def seen(met: bool | None) -> Observation:
    if met is None:
        return NO_DATA
    return Observation(met, 0.05 if met else 0.01, 5 if met else 1, 100)


def run(r: AlertRule, outcomes: Sequence[bool | None], step: timedelta = MIN) -> list[State]:
    """Evaluate once per `step` with these outcomes (None: no data); the state after each."""
    prior: list[Instance] = []
    states = []
    for i, met in enumerate(outcomes):
        observations = {} if met is None else {KEY: seen(met)}
        result = evaluator.evaluate(r, observations, prior, T0 + i * step)
        prior = result.instances
        states.append(prior[0].state if prior else State.inactive)
    return states


INA, P, F, R, RES, N = (State.inactive, State.pending, State.firing, State.recovering,
                      State.resolved, State.nodata)  # fmt: skip


@pytest.mark.parametrize(
    ("changes", "outcomes", "states"),
    [
        ({"for": "0s"}, [True], [F]),  # fires at the first evaluation that meets it
        ({"for": "3m"}, [True, True, True, True], [P, P, P, F]),
        ({"for": "3m"}, [True, True, False, True, True, True, True], [P, P, INA, P, P, P, F]),
        ({"for": "0s"}, [True, False, False], [F, RES, INA]),
        ({"for": "0s", "keep_firing_for": "3m"}, [True, False, False, False, False],
         [F, R, R, RES, INA]),
        ({"for": "0s", "keep_firing_for": "3m"}, [True, False, True, False], [F, R, F, R]),
        ({"for": "2m", "keep_firing_for": "2m"}, [True, True, True, False, True], [P, P, F, R, F]),
    ],
    ids=["for-0s", "for-3m", "for-resets", "resolves", "keep-holds", "keep-refires",
         "for-and-keep"],
)  # fmt: skip
def test_the_state_machine_table(
    changes: dict[str, Any], outcomes: list[bool], states: list[State]
) -> None:
    assert run(rule(**changes), outcomes) == states


@pytest.mark.parametrize(
    ("policy", "states"),
    [
        ("ok", [F, RES, INA]),
        ("alerting", [F, F, F]),
        ("keep_last", [F, F, F]),
        ("nodata", [F, N, N]),
    ],
)
def test_each_no_data_policy_on_a_firing_alert(policy: str, states: list[State]) -> None:
    assert run(rule(no_data=policy), [True, None, None]) == states


def test_keep_last_freezes_a_pending_alert_and_nodata_resolves_on_good_data() -> None:
    assert run(rule(**{"for": "5m", "no_data": "keep_last"}), [True, None, False]) == [P, P, INA]
    assert run(rule(no_data="nodata"), [None, False, False]) == [N, RES, INA]
    wild = {"metric": "upload_failure_rate", "scope": {"flag": "*", "variant": "*"}, "window": "5m"}
    r = rule(no_data="nodata", signal=wild)
    first = evaluator.evaluate(r, {}, [], T0).instances
    second = evaluator.evaluate(r, {KEY: seen(True)}, first, T0 + MIN).instances
    states = {inst.labels.get("variant", "(rule)"): inst.state for inst in second}
    assert states == {"(rule)": RES, "on": F}, "data is back: the rule's no-data alert resolves"


def test_a_rule_without_any_sample_raises_its_no_data_alert_on_its_fixed_scope() -> None:
    r = rule(no_data="alerting", signal={"metric": "error_rate", "window": "5m",
                                         "scope": {"environment": "production", "flag": "*"}})  # fmt: skip
    result = evaluator.evaluate(r, {}, [], T0)
    [inst] = result.instances
    assert inst.state is F
    assert dict(inst.labels) == {"environment": "production", "alertname": "upload-failure",
                                 "severity": "warning"}  # fmt: skip
    assert evaluator.evaluate(rule(no_data="ok"), {}, [], T0).instances == []


def test_the_volume_guard_is_not_a_breach() -> None:
    r = rule()
    [low] = evaluator.observe(r, {timedelta(minutes=30): [SignalSample(dict(KEY), 1, 3)]}).values()
    assert low.met is False and low.value == pytest.approx(1 / 3)
    [zero] = evaluator.observe(r, {timedelta(minutes=30): [SignalSample(dict(KEY), 0, 0)]}).values()
    assert zero.met is None, "no denominator is no data"
    [high] = evaluator.observe(
        r, {timedelta(minutes=30): [SignalSample(dict(KEY), 4, 100)]}
    ).values()
    assert high.met is True


def test_identity_is_rule_and_sorted_labels() -> None:
    a = evaluator.fingerprint("r", {"a": "1", "b": "2"})
    assert a == evaluator.fingerprint("r", {"b": "2", "a": "1"})
    assert a != evaluator.fingerprint("s", {"a": "1", "b": "2"})
    assert a != evaluator.fingerprint("r", {"a": "1", "b": "3"})


def test_each_variant_is_its_own_alert() -> None:
    r = rule()
    observations = {
        (("flag", "f"), ("variant", "on")): seen(True),
        (("flag", "f"), ("variant", "off")): seen(False),
    }
    result = evaluator.evaluate(r, observations, [], T0)
    [inst] = result.instances
    assert inst.labels["variant"] == "on" and inst.state is F
    assert [t.to_state for t in result.transitions] == [F]


def test_transitions_carry_rendered_annotations() -> None:
    r = rule(annotations={"runbook": "roll back {{ labels.flag }}"})
    [inst] = evaluator.evaluate(r, {KEY: seen(True)}, [], T0).instances
    assert inst.annotations["runbook"] == "roll back new-uploader"
    summary = inst.annotations["summary"]
    assert "upload_failure_rate is 5% (> 3%)" in summary and "variant=on" in summary


BURN = {
    "id": "error-budget",
    "signal": {"metric": "error_rate", "scope": {"flag": "*"}},
    "burn_rate": {"objective": 0.99, "windows": [
        {"long": "1h", "short": "5m", "factor": 14.4},
        {"long": "6h", "short": "30m", "factor": 6},
    ]},
    "severity": "page",
}  # fmt: skip


def burn_samples(rates: dict[str, float]) -> dict[timedelta, list[SignalSample]]:
    sizes = {"1h": 60, "5m": 5, "6h": 360, "30m": 30}
    return {
        timedelta(minutes=sizes[w]): [SignalSample({"flag": "f"}, rate * 1000, 1000)]
        for w, rate in rates.items()
    }


@pytest.mark.parametrize(
    ("rates", "met"),
    [
        ({"1h": 0.15, "5m": 0.15, "6h": 0.01, "30m": 0.01}, True),  # fast pair: 15x > 14.4x
        ({"1h": 0.15, "5m": 0.01, "6h": 0.01, "30m": 0.01}, False),  # the short window recovered
        ({"1h": 0.01, "5m": 0.50, "6h": 0.01, "30m": 0.01}, False),  # a spike, not sustained
        ({"1h": 0.07, "5m": 0.07, "6h": 0.07, "30m": 0.07}, True),  # slow pair: 7x > 6x
        ({"1h": 0.05, "5m": 0.05, "6h": 0.05, "30m": 0.05}, False),  # 5x: under both factors
    ],
)
def test_multi_window_burn_rate_needs_both_windows(rates: dict[str, float], met: bool) -> None:
    r = parse_rule(BURN)
    assert isinstance(r, AlertRule)
    [obs] = evaluator.observe(r, burn_samples(rates)).values()
    assert obs.met is met
    assert obs.details["burn_1h"] == pytest.approx(rates["1h"] / 0.01)


# ---- properties --------------------------------------------------------------------------------


outcome_lists = st.lists(st.booleans(), min_size=1, max_size=40)


@given(outcomes=outcome_lists, hold=st.integers(min_value=0, max_value=10))
def test_firing_needs_for_consecutive_breaches(outcomes: list[bool], hold: int) -> None:
    """An alert is firing right after a run of breaches only if the run lasted `for`; a false
    evaluation always starts the count over."""
    states = run(rule(**{"for": f"{hold}m"}), outcomes)
    streak = 0
    for i, met in enumerate(outcomes):
        streak = streak + 1 if met else 0
        if not met:
            assert states[i] in (INA, RES)
        else:
            assert states[i] is (F if streak - 1 >= hold else P), (i, states)


@given(outcomes=outcome_lists, keep=st.integers(min_value=0, max_value=10))
def test_keep_firing_for_holds_after_the_last_breach(outcomes: list[bool], keep: int) -> None:
    """With `for: 0s`, the alert is active exactly while a breach happened less than
    `keep_firing_for` ago (or now)."""
    states = run(rule(keep_firing_for=f"{keep}m"), outcomes)
    last_met: int | None = None
    for i, met in enumerate(outcomes):
        if met:
            last_met = i
        expected_active = last_met is not None and (i == last_met or i - last_met < keep)
        assert (states[i] in (F, R)) is expected_active, (i, states)


@given(outcomes=st.lists(st.sampled_from([True, False, None]), min_size=1, max_size=30),
       policy=st.sampled_from(["ok", "alerting", "keep_last", "nodata"]))  # fmt: skip
def test_no_data_is_read_as_the_policy_says(outcomes: list[bool | None], policy: str) -> None:
    """`ok` and `alerting` make no data a false or a true evaluation; `keep_last` changes nothing;
    `nodata` is its own state, never reached any other way."""
    states = run(rule(no_data=policy), outcomes)
    if policy in ("ok", "alerting"):
        substituted = [policy == "alerting" if o is None else o for o in outcomes]
        assert states == run(rule(no_data=policy), substituted)
    for i, outcome in enumerate(outcomes):
        if outcome is None and policy == "keep_last":
            assert states[i] == (states[i - 1] if i else INA)
        assert (states[i] is N) == (policy == "nodata" and outcome is None)
