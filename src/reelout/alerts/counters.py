"""What `/metrics` shows of the alerts, read from the database at scrape time (the evaluator
and the notifiers may run in another process than the one scraped): counts of alerts entering
firing, resolved or nodata and of notifications queued, kept in `alert_counters` (bumped with
what they count, never pruned), and the alerts firing now per severity."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from reelout.alerts.evaluator import State, Transition
from reelout.alerts.models import AlertCounter, AlertInstance
from reelout.alerts.rules import SEVERITY_LABEL, Severity

TRANSITIONS = "transitions"  # labels: rule, severity, state
NOTIFICATIONS = "notifications"  # labels: receiver, event, status
COUNTED_STATES = (State.firing, State.resolved, State.nodata)
FIRING = (State.firing.value, State.recovering.value)  # recovering: held firing
NO_SEVERITY = "none"


@dataclass(frozen=True)
class AlertCounts:
    """Every counter's label values and count, and the alerts firing now per severity (every
    severity named, 0 when none fires)."""

    counters: dict[str, dict[tuple[str, ...], int]]
    firing: dict[str, int]


def bump(session: Session, name: str, labels: Sequence[str], by: int = 1) -> None:
    """Add `by` to a counter, in the caller's transaction (SQLite and PostgreSQL upsert)."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = dialect.insert(AlertCounter).values(
        name=name, labels=json.dumps(list(labels), separators=(",", ":")), value=by
    )
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["name", "labels"],
            set_={"value": AlertCounter.value + statement.excluded.value},
        )
    )


def count_transitions(session: Session, transitions: Iterable[Transition]) -> None:
    """Count the alerts that entered firing (not back from recovering: it never stopped),
    resolved or nodata."""
    entered: Counter[tuple[str, str, str]] = Counter()
    for t in transitions:
        back = t.to_state is State.firing and t.from_state is State.recovering
        if t.to_state in COUNTED_STATES and not back:
            severity = t.labels.get(SEVERITY_LABEL, NO_SEVERITY)
            entered[(t.rule_id, severity, t.to_state.value)] += 1
    for labels, n in sorted(entered.items()):
        bump(session, TRANSITIONS, labels, n)


def read(session: Session) -> AlertCounts:
    counters: dict[str, dict[tuple[str, ...], int]] = {TRANSITIONS: {}, NOTIFICATIONS: {}}
    for row in session.scalars(select(AlertCounter)):
        counters.setdefault(row.name, {})[tuple(json.loads(row.labels))] = row.value
    firing = {severity.value: 0 for severity in Severity}
    query = select(AlertInstance.labels).where(AlertInstance.state.in_(FIRING))
    for labels in session.scalars(query):
        severity = labels.get(SEVERITY_LABEL, NO_SEVERITY)
        firing[severity] = firing.get(severity, 0) + 1
    return AlertCounts(counters, firing)
