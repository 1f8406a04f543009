"""The alert evaluator (pure): samples in, alert instances and their transitions out.

Prometheus' state machine, per alert identity (rule id + sorted labels), with Grafana's
`recovering` and no-data handling; every transition is in `next_state`, the one place to read:

    inactive ──met──▶ pending ──met for `for`──▶ firing ──not met──▶ recovering ──┐
        ▲   (for = 0: straight to firing)   │         ▲       (keep_firing_for)  │
        │◀──────────── not met ─────────────┘         └────────── met ───────────┤
        │                                                                        ▼
        └──────────────── next evaluation ◀──────────── resolved ◀── held long enough

`nodata` is entered from any state when an evaluation has no data and the rule says
`no_data: nodata`; data that meets the condition leaves it like `inactive` does, data that does
not resolves it. Silenced and inhibited are overlays decided at routing time (`routing`), not
states: a muted alert keeps its state, only its notifications stop.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from reelout.alerts import templates
from reelout.alerts.rules import ALERTNAME, SEVERITY_LABEL, AlertRule, NoData
from reelout.alerts.signals import WILDCARD, SignalSample

LabelKey = tuple[tuple[str, str], ...]


class State(StrEnum):
    inactive = "inactive"
    pending = "pending"
    firing = "firing"
    recovering = "recovering"  # condition no longer met, held firing by keep_firing_for
    resolved = "resolved"
    nodata = "nodata"


ACTIVE = frozenset({State.firing, State.recovering, State.nodata})  # what notifications report


def label_key(labels: Mapping[str, str]) -> LabelKey:
    return tuple(sorted(labels.items()))


def fingerprint(rule_id: str, labels: Mapping[str, str]) -> str:
    """The identity of an alert: a hash of its rule id and sorted labels."""
    text = json.dumps([rule_id, sorted(labels.items())], separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:24]


@dataclass(frozen=True)
class Observation:
    """What one evaluation saw for one label set; `met` None means no data."""

    met: bool | None
    value: float | None = None
    numerator: float = 0.0
    denominator: float = 0.0
    details: Mapping[str, float] = field(default_factory=dict)


NO_DATA = Observation(met=None)


@dataclass(frozen=True)
class Instance:
    """One alert identity's state, as stored between evaluations."""

    fingerprint: str
    rule_id: str
    labels: Mapping[str, str]
    state: State
    state_since: datetime
    active_at: datetime | None = None  # when the condition was first met (start of pending)
    fired_at: datetime | None = None
    last_met_at: datetime | None = None
    resolved_at: datetime | None = None
    last_eval_at: datetime | None = None
    value: float | None = None
    numerator: float = 0.0
    denominator: float = 0.0
    details: Mapping[str, float] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)

    @property
    def active(self) -> bool:
        return self.state in ACTIVE


@dataclass(frozen=True)
class Transition:
    fingerprint: str
    rule_id: str
    labels: Mapping[str, str]
    from_state: State
    to_state: State
    at: datetime
    value: float | None


@dataclass(frozen=True)
class RuleResult:
    """The instances to keep (none inactive) and the transitions this evaluation made."""

    instances: list[Instance]
    transitions: list[Transition]


# ---- observing samples -------------------------------------------------------------------------


def _ratio(sample: SignalSample | None, min_denominator: float) -> float | None:
    if sample is None or sample.denominator <= 0 or sample.denominator < min_denominator:
        return None
    return sample.numerator / sample.denominator


def _threshold(rule: AlertRule, sample: SignalSample) -> Observation:
    assert rule.condition is not None
    if sample.denominator <= 0:
        return NO_DATA
    met = rule.condition.met(sample.numerator, sample.denominator)
    value = sample.numerator / sample.denominator
    return Observation(met, value, sample.numerator, sample.denominator)


def _burn(rule: AlertRule, by_window: Mapping[timedelta, SignalSample | None]) -> Observation:
    """Met when, for some pair, both windows burn the budget faster than the pair's factor."""
    burn = rule.burn_rate
    assert burn is not None
    rates = {w: _ratio(s, burn.min_denominator) for w, s in by_window.items()}
    if all(rates[pair.long] is None for pair in burn.windows):
        return NO_DATA
    met = False
    for pair in burn.windows:
        long_rate, short_rate = rates[pair.long], rates[pair.short]
        if long_rate is not None and short_rate is not None:
            limit = pair.factor * burn.budget
            met = met or (long_rate > limit and short_rate > limit)
    longest = max(by_window)
    sample = by_window[longest]
    details = {
        f"burn_{templates.spell_duration(w)}": rate / burn.budget
        for w, rate in rates.items()
        if rate is not None
    }
    value = rates[longest]
    num, den = (sample.numerator, sample.denominator) if sample else (0.0, 0.0)
    return Observation(met, value, num, den, details)


def observe(
    rule: AlertRule, samples: Mapping[timedelta, Sequence[SignalSample]]
) -> dict[LabelKey, Observation]:
    """Each label set's observation from the samples of every window the rule reads."""
    by_key: dict[LabelKey, dict[timedelta, SignalSample | None]] = {}
    for window, found in samples.items():
        for sample in found:
            by_key.setdefault(label_key(sample.labels), {})[window] = sample
    out: dict[LabelKey, Observation] = {}
    for key, windows in by_key.items():
        if rule.condition is not None:
            out[key] = _threshold(rule, next(iter(windows.values())) or SignalSample({}, 0, 0))
        else:
            out[key] = _burn(rule, {w: windows.get(w) for w in rule.windows()})
    return out


# ---- the state machine -------------------------------------------------------------------------


def next_state(
    state: State,
    met: bool,
    now: datetime,
    *,
    active_at: datetime | None,
    last_met_at: datetime | None,
    hold_for: timedelta,
    keep_firing_for: timedelta,
) -> State:
    """Where an instance in `state` goes when an evaluation at `now` did (not) meet the rule."""
    if met:
        if state is State.pending:
            assert active_at is not None
            return State.firing if now - active_at >= hold_for else State.pending
        if state in (State.firing, State.recovering):
            return State.firing
        # inactive, resolved, nodata: a fresh start; `for: 0s` fires at once
        return State.firing if hold_for <= timedelta(0) else State.pending
    if state is State.pending:
        return State.inactive  # `for` starts over at the next breach
    if state in (State.firing, State.recovering):
        held = last_met_at is not None and now - last_met_at < keep_firing_for
        return State.recovering if held else State.resolved
    if state is State.nodata:
        return State.resolved
    return State.inactive  # inactive stays; resolved is forgotten after one evaluation


def _entered(inst: Instance, new: State, now: datetime, obs: Observation) -> Instance:
    """The instance after an evaluation with data, its timers moved for `new`."""
    was_on = inst.state in (State.pending, State.firing, State.recovering)
    was_firing = inst.state in (State.firing, State.recovering)
    on = new in (State.pending, State.firing, State.recovering)
    kept_since = inst.active_at if was_on and inst.active_at is not None else now
    active_at = kept_since if on else None
    if new in (State.firing, State.recovering):
        fired_at = inst.fired_at if was_firing else now
    else:
        fired_at = inst.fired_at if new is State.resolved else None
    if new is State.resolved:
        resolved_at = inst.resolved_at if inst.state is State.resolved else now
    else:
        resolved_at = None
    return replace(
        inst,
        state=new,
        state_since=now if new is not inst.state else inst.state_since,
        active_at=active_at,
        fired_at=fired_at,
        last_met_at=now if obs.met else inst.last_met_at,
        resolved_at=resolved_at,
        last_eval_at=now,
        value=obs.value,
        numerator=obs.numerator,
        denominator=obs.denominator,
        details=dict(obs.details),
    )


def step(rule: AlertRule, inst: Instance, obs: Observation, now: datetime) -> Instance:
    """One evaluation of one identity: no data resolved by the rule's policy, then the table."""
    met = obs.met
    if met is None:
        if rule.no_data is NoData.keep_last:
            return replace(inst, last_eval_at=now)
        if rule.no_data is NoData.nodata:
            if inst.state is State.nodata:
                return replace(inst, last_eval_at=now)
            return replace(
                inst,
                state=State.nodata,
                state_since=now,
                active_at=None,
                fired_at=now,
                resolved_at=None,
                last_eval_at=now,
                value=None,
                numerator=0.0,
                denominator=0.0,
                details={},
            )
        met = rule.no_data is NoData.alerting
        obs = replace(obs, met=met)
    new = next_state(
        inst.state,
        met,
        now,
        active_at=inst.active_at,
        last_met_at=inst.last_met_at,
        hold_for=rule.for_,
        keep_firing_for=rule.keep_firing_for,
    )
    return _entered(inst, new, now, obs)


# ---- one rule's evaluation ---------------------------------------------------------------------


def alert_labels(rule: AlertRule, sample_labels: Mapping[str, str]) -> dict[str, str]:
    """The sample's labels, the rule's labels, then `alertname` and `severity`."""
    return {
        **dict(sample_labels),
        **rule.labels,
        ALERTNAME: rule.id,
        SEVERITY_LABEL: rule.severity.value,
    }


def fixed_scope(rule: AlertRule) -> dict[str, str]:
    """The labels of the scope that are not wildcards: the identity of a rule with no sample."""
    return {k: v for k, v in rule.signal.scope.items() if v != WILDCARD}


def evaluate(
    rule: AlertRule,
    observations: Mapping[LabelKey, Observation],
    prior: Sequence[Instance],
    now: datetime,
) -> RuleResult:
    """Step every identity the rule has (seen now or before) and keep what is not inactive.

    Identities known from before but absent now have no data; so does the rule itself when no
    sample came at all, if its policy raises an alert on that (`alerting`, `nodata`)."""
    known = {inst.fingerprint: inst for inst in prior if inst.rule_id == rule.id}
    seen: dict[str, tuple[dict[str, str], Observation]] = {}
    for key, obs in observations.items():
        labels = alert_labels(rule, dict(key))
        seen[fingerprint(rule.id, labels)] = (labels, obs)
    whole = alert_labels(rule, fixed_scope(rule))  # the identity of "the rule has no data"
    whole_fp = fingerprint(rule.id, whole)
    if not observations and not known and rule.no_data in (NoData.alerting, NoData.nodata):
        seen[whole_fp] = (whole, NO_DATA)
    elif observations and whole_fp in known and whole_fp not in seen:
        seen[whole_fp] = (whole, Observation(met=False))  # data is back: that alert resolves
    kept: list[Instance] = []
    moved: list[Transition] = []
    for fp in [*known, *(fp for fp in seen if fp not in known)]:
        labels, obs = seen.get(fp, (dict(known[fp].labels) if fp in known else {}, NO_DATA))
        before = known.get(fp) or Instance(fp, rule.id, labels, State.inactive, now)
        after = step(rule, before, obs, now)
        if after.state is not before.state:
            after = replace(after, annotations=annotate(rule, after))
            moved.append(
                Transition(fp, rule.id, after.labels, before.state, after.state, now, after.value)
            )
        if after.state is not State.inactive:
            kept.append(after)
    return RuleResult(kept, moved)


# ---- annotations -------------------------------------------------------------------------------


def default_annotations(rule: AlertRule) -> dict[str, str]:
    """What an on-call reads when the rule's author wrote nothing: what, where, value against
    threshold, since when, and where to look."""
    if rule.burn_rate is not None:
        summary = (
            "{{ alertname }}: {{ metric }} burns the {{ objective|pct }} objective's error "
            "budget too fast in {{ labels|scope }} ({{ state }})"
        )
        detail = "burn rates (times the budget): {% for k, v in details.items() %}{{ k }}={{ v|num }} {% endfor %}"
    else:
        summary = (
            "{{ alertname }}: {{ metric }} is {{ value|pct }} ({{ op }} {{ threshold|pct }}) "
            "in {{ labels|scope }}"
        )
        detail = "{{ numerator|num }} of {{ denominator|num }} over the last {{ window }}"
    description = (
        f"{detail}. State {{{{ state }}}} since {{{{ since|when }}}}."
        " Check the KPI table: reelout kpi --flag {{ labels.flag|default('-') }}"
    )
    return {"summary": summary, "description": description}


def context(rule: AlertRule, inst: Instance) -> dict[str, Any]:
    """The variables a rule's annotation templates can use."""
    cond = rule.condition
    return {
        "alertname": rule.id,
        "labels": dict(inst.labels),
        "state": inst.state.value,
        "since": inst.fired_at or inst.state_since,
        "value": inst.value,
        "numerator": inst.numerator,
        "denominator": inst.denominator,
        "details": dict(inst.details),
        "metric": rule.signal.metric,
        "window": templates.spell_duration(rule.signal.window or max(rule.windows())),
        "op": cond.op.value if cond else ">",
        "threshold": cond.threshold if cond else None,
        "min_denominator": cond.min_denominator if cond else None,
        "objective": rule.burn_rate.objective if rule.burn_rate else None,
        "for": templates.spell_duration(rule.for_),
        "severity": rule.severity.value,
    }


def annotate(rule: AlertRule, inst: Instance) -> dict[str, str]:
    """The rule's annotations (defaults for summary and description) rendered for `inst`."""
    variables = context(rule, inst)
    sources = {**default_annotations(rule), **rule.annotations}
    return {name: templates.render(source, variables) for name, source in sources.items()}
