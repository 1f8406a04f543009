"""The decision a rollout tick makes (spec §4.2), as a pure function of the plan and a snapshot
of the evidence: health checks first (fresh telemetry: the rollups caught up and the apps still
reporting; no page alert, traffic, the planned split), then each guardrail's absolute kill
switch and its anytime-valid comparison with the control, then advance, hold, extend or the
plan's policy once the stage has run its course.

The statistics are reelout.stats.compare's; the metric values come from the telemetry's sums
(reelout.telemetry.sums.estimate). Every number in a verdict is on the harm scale: positive
means the treatment is worse than the control, whatever the metric's direction.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from reelout.alerts.templates import spell_duration
from reelout.rollouts.plan import Guardrail, Plan, Stage
from reelout.stats.compare import (
    Estimate,
    difference,
    normal_bounds,
    sequential_lower_bound,
    sequential_upper_bound,
    sidak,
    srm_p_value,
    wilson,
)
from reelout.telemetry.metrics import METRICS
from reelout.telemetry.sums import Sums, estimate

DecisionKind = Literal["advance", "hold", "pause", "rollback", "complete", "extend"]
MetricState = Literal[
    "pass", "inconclusive", "insufficient", "fail", "breach", "dismissed", "not_yet"
]
Act = Literal["rollback", "hold", "pause"]
ALPHA = "\N{GREEK SMALL LETTER ALPHA}"
_SEVERITY: tuple[Act, ...] = ("rollback", "hold", "pause")  # the first one found decides


@dataclass(frozen=True)
class ArmData:
    exposures: int  # units exposed to this arm in the analysis window
    metrics: Mapping[str, Sums]  # Sums per metric name (cumulative, lagged)


@dataclass(frozen=True)
class ClientEvents:
    """When the apps' own events (source=client, the ingest's) last arrived on the server. The
    flag's is what the check reads: the guardrails only see events carrying the flag, so apps
    that stop sending them (an outage, or a release that dropped the flag from its events)
    blind the rollout even while other apps keep the environment's telemetry going. The
    environment's only says which of the two it is."""

    with_flag: datetime | None  # newest client event carrying the flag in the environment
    anywhere: datetime | None  # newest client event in the environment


@dataclass(frozen=True)
class Snapshot:
    now: datetime
    stage: int  # index into plan.stages
    stage_started_at: datetime
    telemetry_watermark: datetime | None  # all events before this are in the rollups
    last_exposure_at: datetime | None
    treatment: ArmData
    control: ArmData
    page_alerts: tuple[str, ...] = ()  # firing page-severity alert names for this flag
    approved_stages: frozenset[int] = frozenset()  # stage indexes a human approved
    dismissed: frozenset[str] = frozenset()  # metric names dismissed by an operator
    extended_until: datetime | None = None  # set after an extend policy fired
    client_events: ClientEvents | None = None  # None: not tracked (the check is skipped)


@dataclass(frozen=True)
class MetricVerdict:
    """One guardrail at this tick. estimate/lower/upper are the harm (comparison) or the
    treatment's own value (absolute check), as `test` says; threshold is the margin or limit."""

    metric: str
    role: str
    test: str
    estimate: float | None
    lower: float | None
    upper: float | None
    n_treatment: int
    n_control: int
    threshold: float | None
    alpha: float | None
    state: MetricState
    message: str


@dataclass(frozen=True)
class Decision:
    decision: DecisionKind
    stage: int
    reasons: tuple[str, ...]
    per_metric: tuple[MetricVerdict, ...]
    extend_until: datetime | None = None


@dataclass(frozen=True)
class _Judged:
    verdict: MetricVerdict
    acts: tuple[tuple[Act, str], ...] = ()  # what the guardrail asks for, with the reason


def decide(plan: Plan, snapshot: Snapshot) -> Decision:
    """The decision for this tick: the health checks, then the guardrails, then the stage."""
    s = snapshot
    if not 0 <= s.stage < len(plan.stages):
        raise ValueError(f"stage {s.stage} is not a stage of this plan (0..{len(plan.stages) - 1})")
    early = _health(plan, s)
    if early is not None:
        kind, reason = early
        return Decision(kind, s.stage, (reason,), ())
    judged = _judge_all(plan, s)
    verdicts = tuple(j.verdict for j in judged)
    for act in _SEVERITY:
        reasons = tuple(reason for j in judged for a, reason in j.acts if a == act)
        if reasons:
            return Decision(act, s.stage, reasons, verdicts)
    return _progress(plan, s, verdicts)


# ---- health --------------------------------------------------------------------------------


def _health(plan: Plan, s: Snapshot) -> tuple[DecisionKind, str] | None:
    health = plan.health
    if s.telemetry_watermark is None:
        return "hold", "telemetry lag: no telemetry has been rolled up yet"
    lag = s.now - s.telemetry_watermark
    if lag > health.max_data_lag:
        return "hold", (
            f"telemetry lag: the rollups are {spell_duration(lag)} behind"
            f" (max_data_lag {spell_duration(health.max_data_lag)})"
        )
    silent_apps = _client_lag(plan, s)
    if silent_apps is not None:
        return "hold", silent_apps
    if s.page_alerts:
        return "pause", f"alert veto: page alert {', '.join(sorted(s.page_alerts))} firing"
    monitor_only = plan.stages[s.stage].monitor_only
    exposed = s.treatment.exposures + (0 if monitor_only else s.control.exposures)
    if exposed == 0:
        return "hold", "no traffic: no unit exposed yet"
    quiet = health.no_traffic_after
    silent = s.last_exposure_at is None or s.now - s.last_exposure_at > quiet
    if silent and s.now - s.stage_started_at > quiet:
        return "hold", f"no traffic: no exposure for more than {spell_duration(quiet)}"
    if not monitor_only:
        return _srm(plan, s)
    return None


def _client_lag(plan: Plan, s: Snapshot) -> str | None:
    """The apps' telemetry stopped while the flag is still served: no client event carrying
    the flag has arrived for more than max_data_lag (or, if none has, in the stage's first
    max_data_lag), yet a unit was exposed within max_data_lag. The rollups' watermark cannot
    see this: it moves on when nothing arrives. Exposures come from the server's exposure log,
    so when they stop too it is no traffic, not stale telemetry: the later check holds on it."""
    seen, lag = s.client_events, plan.health.max_data_lag
    exposed = s.last_exposure_at
    if seen is None or exposed is None or s.now - exposed > lag:
        return None
    if s.now - (seen.with_flag or s.stage_started_at) <= lag:
        return None
    return (
        f"telemetry lag: {_stopped(plan, s, seen.with_flag)} while the flag is still being"
        f" evaluated (last exposure {_clock(exposed, s.now)}); {_elsewhere(plan, s, seen)};"
        f" max_data_lag {spell_duration(lag)}"
    )


def _stopped(plan: Plan, s: Snapshot, since: datetime | None) -> str:
    if since is None:
        took = spell_duration(s.now - s.stage_started_at)
        return f"no client event carrying {plan.flag} has arrived in the stage's {took}"
    return (
        f"no client events carrying {plan.flag} since {_clock(since, s.now)}"
        f" ({spell_duration(s.now - since)})"
    )


def _elsewhere(plan: Plan, s: Snapshot, seen: ClientEvents) -> str:
    """Whether the environment's other client events still arrive: the flag's events are lost,
    or every app's."""
    if seen.anywhere is not None and s.now - seen.anywhere <= plan.health.max_data_lag:
        return (
            f"other client events still arrive in {plan.environment}"
            f" (last {_clock(seen.anywhere, s.now)})"
        )
    return f"none from any app in {plan.environment} either"


def _clock(at: datetime, now: datetime) -> str:
    """A time of day in UTC, with its date when it is not today's."""
    at = at.astimezone(UTC)
    same_day = at.date() == now.astimezone(UTC).date()
    return f"{at:%H:%M} UTC" if same_day else f"{at:%Y-%m-%d %H:%M} UTC"


def _srm(plan: Plan, s: Snapshot) -> tuple[DecisionKind, str] | None:
    """F3 against the stage's planned split (matched: 50/50 up to the 50% stage, 75:25 at 75%),
    once the smaller arm expects enough units."""
    srm, shares = plan.health.srm, plan.stages[s.stage].shares
    assert shares is not None  # a monitor-only stage has no control and no SRM check
    observed = (s.treatment.exposures, s.control.exposures)
    if sum(observed) * min(shares) / sum(shares) < srm.min_units_per_arm:
        return None
    p = srm_p_value(observed, shares)
    if p >= srm.p_threshold:
        return None
    planned = "/".join(str(round(100 * share / sum(shares))) for share in shares)
    return srm.action, (
        f"SRM: exposures {observed[0]}/{observed[1]} against a {planned} split,"
        f" p={p:.3g} < {srm.p_threshold:g}"
    )


# ---- guardrails ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Context:
    stage: Stage
    alpha_compare: float
    alpha_absolute: float
    n_star: int


def _enabled(g: Guardrail, stage: Stage) -> bool:
    return g.evaluate_from_stage is None or stage.percent >= g.evaluate_from_stage


def _alphas(plan: Plan, s: Snapshot) -> tuple[float, float]:
    """Šidák over the comparisons run at this stage; the absolute checks share that alpha, or
    split it among themselves on a monitor-only stage (which compares nothing)."""
    stage, alpha = plan.stages[s.stage], plan.stats.alpha
    live = [g for g in plan.guardrails if _enabled(g, stage) and g.metric not in s.dismissed]
    compared = 0 if stage.monitor_only else sum(g.vs_control is not None for g in live)
    absolute = sum(g.absolute is not None for g in live)
    if plan.stats.correction == "none":
        return alpha, alpha
    compare_alpha = sidak(alpha, max(1, compared))
    return compare_alpha, compare_alpha if compared else sidak(alpha, max(1, absolute))


def _judge_all(plan: Plan, s: Snapshot) -> list[_Judged]:
    compare_alpha, absolute_alpha = _alphas(plan, s)
    context = _Context(
        plan.stages[s.stage], compare_alpha, absolute_alpha, plan.stats.sequential.tuning_n
    )
    return [_judge(g, s, context) for g in plan.guardrails]


def _units(sums: Sums | None) -> int:
    return 0 if sums is None else max(0, round(sums.n))


def _verdict(g: Guardrail, n: tuple[int, int], state: MetricState, message: str) -> MetricVerdict:
    return MetricVerdict(g.metric, g.role, "", None, None, None, *n, None, None, state, message)


def _judge(g: Guardrail, s: Snapshot, c: _Context) -> _Judged:
    treated, control = s.treatment.metrics.get(g.metric), s.control.metrics.get(g.metric)
    n = (_units(treated), 0 if c.stage.monitor_only else _units(control))
    if not _enabled(g, c.stage):
        message = f"evaluated from the {g.evaluate_from_stage}% stage on"
        return _Judged(_verdict(g, n, "not_yet", message))
    if g.metric in s.dismissed:
        return _Judged(_verdict(g, n, "dismissed", "dismissed by an operator"))
    need = max(1, g.min_events_per_arm)
    if n[0] < need:
        return _Judged(_verdict(g, n, "insufficient", _too_few(n, g)))
    absolute = _absolute(g, treated or Sums(), n, c) if g.absolute else None
    compared = None
    if g.vs_control is not None and not c.stage.monitor_only:
        if n[1] < need:  # the kill switch still judges the treatment alone
            compared = _Judged(_verdict(g, n, "insufficient", _too_few(n, g)))
        else:
            compared = _compare(g, treated or Sums(), control or Sums(), n, c)
    return _combine(g, n, absolute, compared)


def _too_few(n: tuple[int, int], g: Guardrail) -> str:
    return f"n={_ns(n)} < min_events_per_arm {g.min_events_per_arm}"


def _combine(
    g: Guardrail, n: tuple[int, int], absolute: _Judged | None, compared: _Judged | None
) -> _Judged:
    checks = [j for j in (compared, absolute) if j is not None]
    if not checks:  # a comparison only, on a stage without a control
        return _Judged(_verdict(g, n, "inconclusive", "no control to compare with at this stage"))
    acts = tuple(act for j in checks for act in j.acts) if g.role != "info" else ()
    for state in ("fail", "breach", "insufficient", "inconclusive"):
        for j in checks:
            if j.verdict.state == state:
                return _Judged(j.verdict, acts)
    return _Judged(checks[0].verdict, acts)  # every check passed


def _absolute(g: Guardrail, sums: Sums, n: tuple[int, int], c: _Context) -> _Judged:
    """The kill switch: a one-sided bound of the treatment's own value past the limit. A
    proportion uses the Wilson bound (F2), a ratio or a mean the normal bound of its estimate."""
    assert g.absolute is not None
    metric, alpha = METRICS[g.metric], c.alpha_absolute
    value = estimate(metric, sums)
    if value is None:
        return _Judged(_verdict(g, n, "insufficient", "no value yet"))
    if metric.kind == "proportion":
        test = "wilson"
        lower, upper = wilson(round(sums.x), round(sums.n), 2 * alpha)  # one-sided alpha each
    else:
        test = "normal"
        lower, upper = normal_bounds(value, alpha)
    limit = g.absolute.max if g.absolute.max is not None else g.absolute.min
    assert limit is not None
    if g.absolute.max is not None:
        breached, passed, bound, word = lower > limit, upper <= limit, lower, "lower bound"
        sign = ">"
    else:
        breached, passed, bound, word = upper < limit, lower >= limit, upper, "upper bound"
        sign = "<"
    state: MetricState = "breach" if breached else "pass" if passed else "inconclusive"
    head = f'guardrail "{g.metric}" BREACH' if breached else f'"{g.metric}"'
    message = (
        f"{head}: {word} {_num(bound)} {sign if breached else 'vs'} limit {_num(limit)}"
        f" (value {_num(value.mean)}, n={n[0]}, {ALPHA}={_num(alpha)})"
    )
    verdict = MetricVerdict(
        g.metric, g.role, test, value.mean, lower, upper, *n, limit, alpha, state, message
    )
    return _Judged(verdict, ((g.absolute.action, message),) if breached else ())


def _compare(
    g: Guardrail, treated: Sums, control: Sums, n: tuple[int, int], c: _Context
) -> _Judged:
    """F6, one-sided and anytime-valid, on the harm: treatment - control for a lower-is-better
    metric, control - treatment for a higher-is-better one (relative: over |control|)."""
    assert g.vs_control is not None
    metric, alpha, relative = METRICS[g.metric], c.alpha_compare, g.vs_control.relative
    t_value, c_value = estimate(metric, treated), estimate(metric, control)
    if t_value is None or c_value is None:
        return _Judged(_verdict(g, n, "insufficient", "no value yet in one arm"))
    try:
        lower, upper, effect = _harm_bounds(g, c_value, t_value, relative, alpha, c.n_star)
    except ValueError:  # a relative change against a control of 0
        return _Judged(_verdict(g, n, "inconclusive", "a relative change needs a control above 0"))
    margin = g.vs_control.margin
    failed, passed = lower > margin, upper < margin
    state: MetricState = "fail" if failed else "pass" if passed else "inconclusive"
    word = {"fail": "FAIL", "pass": "pass", "inconclusive": "inconclusive"}[state]
    relation = ">" if failed else "≤"
    message = (
        f'guardrail "{g.metric}" {word}: harm lower bound {_num(lower)} {relation} margin'
        f" {_num(margin)}{' (relative)' if relative else ''} (n={_ns(n)}, {ALPHA}={_num(alpha)})"
    )
    verdict = MetricVerdict(
        g.metric, g.role, "asymptotic_cs", effect, lower, upper, *n, margin, alpha, state, message
    )
    act: Act = "rollback" if g.role in ("critical", "guardrail") else "hold"
    return _Judged(verdict, ((act, message),) if failed else ())


def _harm_bounds(
    g: Guardrail, control: Estimate, treated: Estimate, relative: bool, alpha: float, n_star: int
) -> tuple[float, float, float]:
    """(lower, upper, point) of the harm, each bound one-sided at alpha."""
    effect, _ = difference(control, treated, relative)
    low = sequential_lower_bound(control, treated, relative=relative, alpha=alpha, n_star=n_star)
    high = sequential_upper_bound(control, treated, relative=relative, alpha=alpha, n_star=n_star)
    if g.direction == "lower_is_better":
        return low, high, effect
    return -high, -low, -effect


# ---- the stage -----------------------------------------------------------------------------


def _progress(plan: Plan, s: Snapshot, verdicts: tuple[MetricVerdict, ...]) -> Decision:
    stage = plan.stages[s.stage]
    elapsed = max(timedelta(0), s.now - (s.stage_started_at + stage.warmup))
    missing = _missing(plan, s, elapsed, verdicts)
    if not missing:
        return _next(plan, s, verdicts, _done(stage, s, elapsed))
    if stage.max_duration is not None and elapsed > stage.max_duration:
        return _policy(plan, s, verdicts, missing)
    return Decision("hold", s.stage, (f"collecting: {'; '.join(missing)}",), verdicts)


def _missing(
    plan: Plan, s: Snapshot, elapsed: timedelta, verdicts: tuple[MetricVerdict, ...]
) -> list[str]:
    stage, missing = plan.stages[s.stage], []
    if elapsed < stage.min_duration:
        missing.append(
            f"{spell_duration(elapsed)} of min_duration {spell_duration(stage.min_duration)}"
            " elapsed (after warmup)"
        )
    arms = (s.treatment.exposures,) if stage.monitor_only else _exposures(s)
    if min(arms) < stage.min_units_per_arm:
        shown = "/".join(str(a) for a in arms)
        missing.append(f"units {shown} < min_units_per_arm {stage.min_units_per_arm}")
    short = [v.metric for v in verdicts if v.role == "critical" and v.state == "insufficient"]
    if short:
        missing.append(f"critical metric without enough data: {', '.join(short)}")
    return missing


def _exposures(s: Snapshot) -> tuple[int, int]:
    return s.treatment.exposures, s.control.exposures


def _done(stage: Stage, s: Snapshot, elapsed: timedelta) -> str:
    arms = (s.treatment.exposures,) if stage.monitor_only else _exposures(s)
    return (
        f"stage {stage.percent}% done: {spell_duration(elapsed)} ≥ min_duration"
        f" {spell_duration(stage.min_duration)}, units {'/'.join(str(a) for a in arms)}"
        f" ≥ {stage.min_units_per_arm}, no proven harm"
    )


def _next(plan: Plan, s: Snapshot, verdicts: tuple[MetricVerdict, ...], why: str) -> Decision:
    """Advance into the next stage (or complete after the last), unless a person must approve
    the next stage first."""
    following = s.stage + 1
    if following >= len(plan.stages):
        return Decision("complete", s.stage, (why,), verdicts)
    percent = plan.stages[following].percent
    if percent in plan.approvals.before_stage and following not in s.approved_stages:
        return Decision("hold", s.stage, (f"awaiting approval before {percent}%", why), verdicts)
    return Decision("advance", s.stage, (f"{why}: advancing to {percent}%",), verdicts)


def _policy(
    plan: Plan, s: Snapshot, verdicts: tuple[MetricVerdict, ...], missing: list[str]
) -> Decision:
    """The plan's on_insufficient_data once the stage is past its max_duration."""
    stage, policy = plan.stages[s.stage], plan.on_insufficient_data
    assert stage.max_duration is not None
    why = (
        f"past max_duration {spell_duration(stage.max_duration)} without enough data:"
        f" {'; '.join(missing)}"
    )
    if policy.action == "extend_then_pause":
        if s.extended_until is None:
            until = s.now + policy.extend_by
            reason = f"{why}; extending by {spell_duration(policy.extend_by)}"
            return Decision("extend", s.stage, (reason,), verdicts, extend_until=until)
        if s.now > s.extended_until:
            return Decision("pause", s.stage, (f"{why}; the extension is over",), verdicts)
        return Decision(
            "hold",
            s.stage,
            (f"collecting (extended until {s.extended_until:%Y-%m-%d %H:%M}): {why}",),
            verdicts,
        )
    if policy.action == "advance":
        return _next(plan, s, verdicts, f"{why}; the plan advances anyway")
    return Decision(policy.action, s.stage, (why,), verdicts)


# ---- output --------------------------------------------------------------------------------


def _num(value: float, digits: int = 3) -> str:
    return f"{value:.{digits}g}"


def _ns(n: tuple[int, int]) -> str:
    return f"{n[0]}/{n[1]}"


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def decision_body(decision: Decision) -> dict[str, Any]:
    """The decision as JSON-ready data: `{decision, stage, reasons, per_metric: {name: ...},
    extend_until}` (non-finite numbers as null)."""
    per_metric = {
        v.metric: {
            "role": v.role,
            "test": v.test or None,
            "estimate": _finite(v.estimate),
            "interval": [_finite(v.lower), _finite(v.upper)],
            "n_treatment": v.n_treatment,
            "n_control": v.n_control,
            "threshold": _finite(v.threshold),
            "alpha": _finite(v.alpha),
            "state": v.state,
            "message": v.message,
        }
        for v in decision.per_metric
    }
    until = decision.extend_until
    return {
        "decision": decision.decision,
        "stage": decision.stage,
        "reasons": list(decision.reasons),
        "per_metric": per_metric,
        "extend_until": until.isoformat() if until is not None else None,
    }
