"""The rollback's page alert, through the alerts domain's own machinery: the built-in rule
`rollout-rolled-back` and the signal it reads, `rollout_rolled_back` (rollbacks per flag,
environment, rollout and reason class within the rule's window), which the composition roots
add to the alerts' signal source (`with_rollbacks`).

A rollback stores the rule when no rule has its id (`ensure_rule`) and queues an evaluation
now; the evaluator then fires the alert like any other, so it shows on the console's Alerts
page and reaches receivers through routing, grouping, silences and inhibition, signed. The rule
is a rule like the others: edit its window, severity or annotations, or disable it; deleted, it
is stored again at the next rollback.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from reelout.alerts import evaluation
from reelout.alerts import service as alerts
from reelout.alerts.rules import AlertRule, parse_rule
from reelout.alerts.signals import (
    WILDCARD,
    CombinedSignals,
    SignalSample,
    SignalSource,
    UnknownMetric,
)
from reelout.clock import Clock
from reelout.context import Core
from reelout.rollouts.models import Rollout
from reelout.rollouts.states import State

RULE_ID = "rollout-rolled-back"
METRIC = "rollout_rolled_back"
LABELS = ("environment", "flag", "rollout", "reason")

RULE: dict[str, Any] = {
    "id": RULE_ID,
    "description": (
        "Built in: a rollout was rolled back (pages at once, firing for the window). Edit or "
        "disable it like any rule; deleted, it is stored again at the next rollback."
    ),
    "signal": {"metric": METRIC, "scope": dict.fromkeys(LABELS, WILDCARD), "window": "1h"},
    "condition": {"op": ">", "threshold": 0},
    "for": "0s",
    "keep_firing_for": "0s",
    "no_data": "ok",
    "severity": "page",
    "actions": ["notify"],
    "annotations": {
        "summary": (
            "rollout {{ labels.rollout }} of {{ labels.flag }} in {{ labels.environment }} "
            "was rolled back ({{ labels.reason }}): everyone gets the control"
        ),
        "description": (
            "The controller or an operator rolled the flag back to its control for everyone. "
            "The evidence it was rolled back on is frozen on the rollout."
        ),
        "runbook": (
            "reelout rollouts show {{ labels.rollout }}, or GET /api/v1/rollouts/"
            "{{ labels.rollout }} (frozen_evidence); fix the treatment, then create a new "
            "rollout of {{ labels.flag }}."
        ),
    },
}


def rule() -> AlertRule:
    parsed = parse_rule(RULE)
    assert isinstance(parsed, AlertRule)
    return parsed


class _Controller:
    """Who the built-in rule is stored as (in the audit trail), whoever rolled back."""

    key_id = "rollouts"
    name = "rollout-controller"


def raise_alert(session: Session, clock: Clock, rollout_id: int) -> None:
    """After a rollback, in its transaction: the rule if it is missing, and an evaluation now."""
    alerts.ensure_rule(session, clock, _Controller(), rule())
    evaluation.evaluate_soon(session, clock, f"rollback:{rollout_id}")


class RolloutSignals:
    """The alerts' signal source for `rollout_rolled_back`: per label set of the scope, how
    many rollouts were rolled back within the window (the denominator is 1, so the value is
    that count)."""

    def __init__(self, core: Core) -> None:
        self.core = core

    def known_metrics(self) -> Collection[str]:
        return frozenset({METRIC})

    def sample(
        self, metric: str, scope: Mapping[str, str], window: timedelta, at: datetime
    ) -> Sequence[SignalSample]:
        if metric != METRIC:
            raise UnknownMetric(f"the rollouts know only {METRIC!r}, not {metric!r}")
        query = select(Rollout).where(
            Rollout.state == State.rolled_back.value,
            Rollout.ended_at > at - window,
            Rollout.ended_at <= at,
        )
        counts: Counter[tuple[tuple[str, str], ...]] = Counter()
        with self.core.db.read() as session:
            for row in session.scalars(query):
                labels = _labels(row)
                if all(v == WILDCARD or labels.get(k) == v for k, v in scope.items()):
                    counts[tuple((k, labels.get(k, "")) for k in sorted(scope))] += 1
        return [SignalSample(dict(key), float(n), 1.0) for key, n in sorted(counts.items())]


def with_rollbacks(core: Core, base: SignalSource) -> SignalSource:
    """`base` (the KPI rollups) plus `rollout_rolled_back`: what the composition roots that
    evaluate or save alert rules (the app, `reelout worker`, `reelout alerts`) hand the alerts.
    The runtime cannot add it itself: the flags' CLI builds runtimes, and the rollouts build
    on the flags."""
    return CombinedSignals(base, RolloutSignals(core))


def _labels(row: Rollout) -> dict[str, str]:
    frozen = row.frozen_evidence or {}
    return {
        "environment": row.environment,
        "flag": row.flag,
        "rollout": str(row.id),
        "reason": str(frozen.get("reason_class", "other")),
    }
