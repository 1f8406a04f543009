"""The rollouts on `/metrics`, as a prometheus-client custom collector that reads the database at
scrape time (the controller ticks wherever a worker runs, so an in-process count would show only
this process's share): decisions by kind and reason class, and for the newest rollout of each
flag in each environment its state, its stage's percentage and each guardrail's bound against
its threshold from the latest decision.

The issue names the counter `rollout_decision_total`; it is `reelout_rollout_decisions_total`
here, with the `reelout_` prefix and plural of every Reelout series. Labels stay bounded: the
decision and reason labels take fixed sets (anything else is `other`), and the per-rollout
series cover one rollout per flag and environment (the newest), so they grow with the flags,
not with the rollouts ever run."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from typing import Any, get_args

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from reelout.context import Core
from reelout.rollouts import effects, reasons
from reelout.rollouts.decide import DecisionKind
from reelout.rollouts.models import Rollout
from reelout.rollouts.plan import Guardrail, stored_plan
from reelout.rollouts.served import arms_of
from reelout.rollouts.states import Command, State

log = logging.getLogger(__name__)
DECISIONS = frozenset({*get_args(DecisionKind), *(c.value for c in Command)})
REASONS = frozenset(reasons.CLASSES)
LIVE = (State.running.value, State.paused.value)
PER_ROLLOUT = ("flag", "environment", "rollout")


def _bounded(value: str, allowed: frozenset[str]) -> str:
    return value if value in allowed else reasons.OTHER


def newest_rollouts(session: Session) -> list[Rollout]:
    """The newest rollout of each flag in each environment (a live one is always the newest:
    a flag has one unfinished rollout at most)."""
    newest = (
        select(func.max(Rollout.id)).group_by(Rollout.environment, Rollout.flag).scalar_subquery()
    )
    query = select(Rollout).where(Rollout.id.in_(newest)).order_by(Rollout.id)
    return list(session.scalars(query))


def bound(verdict: Mapping[str, Any], guardrail: Guardrail | None) -> float | None:
    """The bound a guardrail's verdict compares with its threshold: the harm's lower bound for
    the comparison with the control, and for an absolute limit the lower bound against a `max`
    or the upper bound against a `min`."""
    interval = verdict.get("interval") or [None, None]
    absolute = guardrail.absolute if guardrail is not None else None
    if verdict.get("test") in ("wilson", "normal") and absolute is not None:
        value = interval[0] if absolute.max is not None else interval[1]
    else:
        value = interval[0]
    return float(value) if isinstance(value, int | float) else None


class RolloutMetrics:
    """`reelout_rollout_decisions_total`, `reelout_rollout_state`,
    `reelout_rollout_stage_percent`, `reelout_rollout_guardrail_bound` and
    `reelout_rollout_guardrail_threshold`, read from the rollouts' tables at each scrape."""

    def __init__(self, core: Core) -> None:
        self.core = core

    def collect(self) -> Iterator[Metric]:
        try:
            with self.core.db.read() as session:
                counted = effects.counts(session)
                rollouts = newest_rollouts(session)
                yield from self._decisions(counted)
                yield from self._per_rollout(rollouts)
        except SQLAlchemyError:  # the rest of the scrape still answers
            log.warning("rollout metrics: the database could not be read", exc_info=True)

    def describe(self) -> Iterator[Metric]:
        return iter(())  # read at scrape time: nothing to collect when registering

    def _decisions(self, counted: Mapping[tuple[str, str], int]) -> Iterator[Metric]:
        family = CounterMetricFamily(
            "reelout_rollout_decisions",
            "Rollout decisions the controller logged (advance, hold, pause, rollback, complete, "
            "extend) by reason class, and operators' commands (reason `command`).",
            labels=("decision", "reason"),
        )
        summed: dict[tuple[str, str], int] = {}
        for (decision, reason), n in counted.items():
            key = (_bounded(decision, DECISIONS), _bounded(reason, REASONS))
            summed[key] = summed.get(key, 0) + n
        for labels, n in sorted(summed.items()):
            family.add_metric(labels, n)
        yield family

    def _per_rollout(self, rollouts: list[Rollout]) -> Iterator[Metric]:
        state = GaugeMetricFamily(
            "reelout_rollout_state",
            "1 for the state the newest rollout of each flag is in, 0 for the others.",
            labels=(*PER_ROLLOUT, "state"),
        )
        percent = GaugeMetricFamily(
            "reelout_rollout_stage_percent",
            "The treatment's percentage of the current stage of each running or paused rollout.",
            labels=PER_ROLLOUT,
        )
        arm = GaugeMetricFamily(
            "reelout_rollout_arm_info",
            "1 for each arm of a running or paused rollout: `arm` (treatment or control), the "
            "plan's `variant` and the key `served_as` the flag serves it as (the `variant` label "
            "of the telemetry's series).",
            labels=(*PER_ROLLOUT, "arm", "variant", "served_as"),
        )
        limits = ("bound", "threshold")
        guard = {
            name: GaugeMetricFamily(
                f"reelout_rollout_guardrail_{name}",
                f"Each guardrail's {name} in the latest decision of a running or paused rollout"
                " (harm scale for a comparison with the control: above the threshold is proven"
                " harm; the treatment's own value for an absolute limit).",
                labels=(*PER_ROLLOUT, "metric"),
            )
            for name in limits
        }
        for row in rollouts:
            labels = (row.flag, row.environment, str(row.id))
            for name in State:
                state.add_metric([*labels, name.value], 1.0 if row.state == name.value else 0.0)
            if row.state not in LIVE:
                continue
            plan = stored_plan(row.plan)
            percent.add_metric(list(labels), float(plan.percents[row.stage]))
            split = arms_of(row)
            arm.add_metric([*labels, "treatment", split.treatment, split.served_treatment], 1.0)
            arm.add_metric([*labels, "control", split.control, split.served_control], 1.0)
            plan_guardrails = {guardrail.metric: guardrail for guardrail in plan.guardrails}
            per_metric = (row.last_decision or {}).get("per_metric") or {}
            for metric, verdict in sorted(per_metric.items()):
                if not isinstance(verdict, Mapping):
                    continue
                found = bound(verdict, plan_guardrails.get(metric))
                threshold = verdict.get("threshold")
                if found is not None:
                    guard["bound"].add_metric([*labels, metric], found)
                if isinstance(threshold, int | float):
                    guard["threshold"].add_metric([*labels, metric], float(threshold))
        yield state
        yield percent
        yield arm
        yield from guard.values()
