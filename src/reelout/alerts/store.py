"""Between the tables and the pure core: rows to evaluator instances, routing views, groups and
silences, and writing an evaluation's result back."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from reelout.alerts import counters
from reelout.alerts.evaluator import Instance, State, Transition
from reelout.alerts.models import AlertGroupRow, AlertInstance, AlertSilence, AlertTransition
from reelout.alerts.routing import AlertView, Group, Matcher, MatchOp, SilenceWindow


def utc(when: datetime) -> datetime:
    """A time as given, read as UTC when it names no zone (as the API documents)."""
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


# ---- instances ---------------------------------------------------------------------------------


def instance(row: AlertInstance) -> Instance:
    return Instance(
        fingerprint=row.fingerprint,
        rule_id=row.rule_id,
        labels=dict(row.labels),
        state=State(row.state),
        state_since=row.state_since,
        active_at=row.active_at,
        fired_at=row.fired_at,
        last_met_at=row.last_met_at,
        resolved_at=row.resolved_at,
        last_eval_at=row.last_eval_at,
        value=row.value,
        numerator=row.numerator,
        denominator=row.denominator,
        details=dict(row.details),
        annotations=dict(row.annotations),
    )


def _fill(row: AlertInstance, inst: Instance) -> None:
    row.rule_id, row.labels, row.state = inst.rule_id, dict(inst.labels), inst.state.value
    row.state_since, row.active_at, row.fired_at = inst.state_since, inst.active_at, inst.fired_at
    row.last_met_at, row.resolved_at, row.last_eval_at = (
        inst.last_met_at,
        inst.resolved_at,
        inst.last_eval_at,
    )
    row.value, row.numerator, row.denominator = inst.value, inst.numerator, inst.denominator
    row.details, row.annotations = dict(inst.details), dict(inst.annotations)


def load_instances(session: Session) -> list[Instance]:
    return [instance(row) for row in session.scalars(select(AlertInstance))]


def save_instances(
    session: Session, rule_id: str, kept: Sequence[Instance], transitions: Iterable[Transition]
) -> None:
    """Make the rule's stored instances exactly `kept`, append its transitions and count them
    (`counters`)."""
    transitions = list(transitions)
    rows = {r.fingerprint: r for r in session.scalars(
        select(AlertInstance).where(AlertInstance.rule_id == rule_id)
    )}  # fmt: skip
    wanted = {inst.fingerprint: inst for inst in kept}
    for fp, row in rows.items():
        if fp not in wanted:
            session.delete(row)
    for fp, inst in wanted.items():
        row = rows.get(fp) or AlertInstance(fingerprint=fp)
        _fill(row, inst)
        session.add(row)
    summaries = {inst.fingerprint: inst.annotations.get("summary") for inst in kept}
    for t in transitions:
        session.add(
            AlertTransition(
                fingerprint=t.fingerprint,
                rule_id=t.rule_id,
                labels=dict(t.labels),
                from_state=t.from_state.value,
                to_state=t.to_state.value,
                at=t.at,
                value=t.value,
                summary=summaries.get(t.fingerprint),
            )
        )
    counters.count_transitions(session, transitions)
    session.flush()


def forget_rules_except(session: Session, rule_ids: Iterable[str]) -> None:
    """Drop the instances of rules that no longer exist."""
    session.execute(delete(AlertInstance).where(AlertInstance.rule_id.not_in(list(rule_ids))))


# ---- routing views -----------------------------------------------------------------------------

_STATUS = {State.firing: "firing", State.recovering: "firing", State.nodata: "nodata"}


def view(row: AlertInstance | Instance) -> AlertView:
    """An alert as routing and notifications see it (pending and resolved are not active)."""
    inst = instance(row) if isinstance(row, AlertInstance) else row
    status = _STATUS.get(inst.state, "resolved" if inst.state is State.resolved else "pending")
    return AlertView(
        fingerprint=inst.fingerprint,
        labels=dict(inst.labels),
        annotations=dict(inst.annotations),
        status=status,
        starts_at=inst.fired_at,
        ends_at=inst.resolved_at,
        value=inst.value,
    )


def silence_window(row: AlertSilence) -> SilenceWindow:
    matchers = tuple(
        Matcher(m["name"], m["value"], MatchOp(m.get("op", "="))) for m in row.matchers
    )
    return SilenceWindow(row.id, matchers, row.starts_at, row.ends_at)


# ---- groups ------------------------------------------------------------------------------------


def load_groups(session: Session) -> dict[tuple[str, str], Group]:
    out = {}
    for row in session.scalars(select(AlertGroupRow)):
        notified = {a["fingerprint"]: AlertView.from_json(a) for a in row.notified}
        out[(row.receiver_id, row.key)] = Group(
            row.receiver_id,
            row.key,
            dict(row.labels),
            row.created_at,
            row.last_notified_at,
            notified,
        )
    return out


def save_groups(session: Session, groups: dict[tuple[str, str], Group]) -> None:
    """Make the stored groups exactly `groups`."""
    rows = {(r.receiver_id, r.key): r for r in session.scalars(select(AlertGroupRow))}
    for key, row in rows.items():
        if key not in groups:
            session.delete(row)
    for key, group in groups.items():
        row = rows.get(key) or AlertGroupRow(receiver_id=group.receiver_id, key=group.key)
        row.labels, row.created_at = dict(group.labels), group.created_at
        row.last_notified_at = group.last_notified_at
        row.notified = [a.to_json() for a in group.notified.values()]
        session.add(row)
    session.flush()


def forget_groups(session: Session, receiver_id: str) -> None:
    session.execute(delete(AlertGroupRow).where(AlertGroupRow.receiver_id == receiver_id))
