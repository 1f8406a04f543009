"""What a rollout's step does beyond its flag write and log row: a rollback freezes the evidence
it was made on and raises the page alert (`alerting`); a pause, rollback, completion or abort
queues a `rollouts.notify` job that tells the plan's `notify` targets (`notices`) through the
alerts' receivers; and every decision and operator command is counted for `/metrics`
(`reasons`). All in the step's own transaction."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from reelout.alerts import service as alerts
from reelout.audit.service import Actor
from reelout.clock import Clock
from reelout.jobs import service as jobs
from reelout.rollouts import alerting, notices, reasons
from reelout.rollouts.models import Rollout, RolloutCount, RolloutLogEntry
from reelout.rollouts.plan import stored_plan
from reelout.rollouts.served import arms_of, served_as
from reelout.rollouts.states import State

log = logging.getLogger("reelout.rollouts")
NOTIFY_JOB = "rollouts.notify"


def count(session: Session, decision: str, reason: str) -> None:
    """One more decision (or command) of this kind and reason class, in the caller's
    transaction (SQLite and PostgreSQL upsert)."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = dialect.insert(RolloutCount).values(decision=decision, reason=reason, value=1)
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["decision", "reason"],
            set_={"value": RolloutCount.value + statement.excluded.value},
        )
    )


def counts(session: Session) -> dict[tuple[str, str], int]:
    """Every (decision, reason class) counted so far."""
    return {(r.decision, r.reason): r.value for r in session.scalars(select(RolloutCount))}


def _iso(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


def freeze(
    row: Rollout,
    now: datetime,
    who: Actor,
    reason: str | None,
    decision: Mapping[str, Any] | None,
) -> None:
    """Keep, once, what the rollout was rolled back on: the decision that rolled it back (or,
    for an operator's rollback, the last decision the controller made), who, why and where.
    Nothing changes it afterwards: a rolled-back rollout takes no decision or command."""
    if row.frozen_evidence is not None:
        return
    plan = stored_plan(row.plan)
    cause = "decision" if decision is not None else "command"
    row.frozen_evidence = {
        "at": _iso(now),
        "who": who.name,
        "cause": cause,
        "reason": reason,
        "reason_class": reasons.classify([reason or ""]) if decision else reasons.COMMAND,
        "stage": row.stage,
        "percent": plan.percents[row.stage],
        "decision": dict(decision) if decision is not None else row.last_decision,
    }


def after_step(
    session: Session,
    clock: Clock,
    row: Rollout,
    entry: RolloutLogEntry,
    decision: Mapping[str, Any] | None,
) -> None:
    """What the step that `entry` logged does beyond the flag (once the step is flushed; the
    evidence is frozen before, with the step): for a rollback, raise the alert; for a state
    the plan's targets hear of, queue their job."""
    if row.state == State.rolled_back.value:
        alerting.raise_alert(session, clock, row.id)
    if row.state in notices.EVENTS and _targets(row):
        payload = {"rollout_id": row.id, "entry_id": entry.id, "decision": decision}
        jobs.enqueue(session, clock, NOTIFY_JOB, payload, dedupe_key=f"{NOTIFY_JOB}:{entry.id}")


def _targets(row: Rollout) -> list[str]:
    return stored_plan(row.plan).notify


def notice(
    row: Rollout, entry: RolloutLogEntry, decision: Mapping[str, Any] | None
) -> notices.Notice:
    """The notice of the step `entry` logged (its `to` state and stage, whatever the rollout
    did since)."""
    plan = stored_plan(row.plan)
    to = entry.body.get("to", {})
    stage = int(to.get("stage", row.stage))
    keys = served_as(arms_of(row))
    evidence = decision
    if evidence is None and to.get("state") == State.rolled_back.value and row.frozen_evidence:
        evidence = row.frozen_evidence.get("decision")
    return notices.Notice(
        rollout_id=row.id,
        flag=row.flag,
        environment=row.environment,
        treatment=plan.treatment,
        control=plan.control.variation,
        served_treatment=keys.treatment,
        served_control=keys.control,
        excluded=keys.excluded,
        state=str(to.get("state", row.state)),
        stage=stage,
        stages=len(plan.percents),
        percent=plan.percents[stage],
        at=entry.at,
        who=entry.who,
        reason=entry.reason,
        decision=evidence,
    )


def send_notices(
    session: Session, clock: Clock, payload: Mapping[str, Any], *, max_attempts: int
) -> list[str]:
    """The `rollouts.notify` job's work: one message per `notify` target, queued through the
    alerts' delivery log (signed for webhook receivers, Block Kit for Slack ones); the delivery
    ids. A target that names no receiver is skipped with a warning in the server's log."""
    row = session.get(Rollout, int(payload["rollout_id"]))
    entry = session.get(RolloutLogEntry, int(payload["entry_id"]))
    if row is None or entry is None:
        return []
    note = notice(row, entry, payload.get("decision"))
    if note.state not in notices.EVENTS:
        return []
    sent = []
    for text in _targets(row):
        target = notices.target(text)
        delivery_id = alerts.send_message(
            session,
            clock,
            target.receiver_id,
            note.event,
            note.state,
            data=notices.data(note),
            slack=notices.slack(note),
            max_attempts=max_attempts,
            kind=target.kind,
        )
        if delivery_id is None:
            kind = f"{target.kind} " if target.kind else ""
            log.warning(
                "rollout %s: notify target %r names no %sreceiver %r; skipped",
                row.id, text, kind, target.receiver_id,
            )  # fmt: skip
        else:
            sent.append(delivery_id)
    return sent
