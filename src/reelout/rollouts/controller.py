"""The rollout controller: each tick decides every running rollout on its evidence (the plan, the
telemetry rollups, the alerts) and records the decision, which moves the rollout and its flag."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session

from reelout.clock import Clock
from reelout.db.engine import Database
from reelout.rollouts import evidence, service
from reelout.rollouts.decide import Decision, Snapshot, decide, decision_body
from reelout.rollouts.plan import Plan, stored_plan
from reelout.rollouts.schemas import RolloutOut

log = logging.getLogger("reelout.rollouts")
TICK_JOB = "rollouts.tick"


@dataclass(frozen=True)
class TickResult:
    """What one tick did: decisions made (by kind) and how many of them moved a rollout."""

    decisions: Counter[str] = field(default_factory=Counter)
    applied: int = 0


def tick(db: Database, clock: Clock, *, slot: datetime | None = None) -> TickResult:
    """Decide every running rollout once, each in its own transaction, so one rollout's failure
    costs only its own decision. `slot`: the schedule's slot this tick is for (a rollout
    already decided for it, or for a later one, is left alone). What their evidence shares (the
    rollups' watermark, the firing alerts that veto rollouts, the apps' last client arrivals
    for each rollout's flag) is read once, with the list of rollouts: an alert that starts
    firing during the tick vetoes from the next one."""
    with db.read() as session:
        rollouts = service.running(session)
        ids = [rollout.id for rollout in rollouts]
        targets = [(rollout.environment, rollout.flag) for rollout in rollouts]
        shared = evidence.tick_reads(session, targets) if ids else None
    decisions: Counter[str] = Counter()
    applied = 0
    for rollout_id in ids:
        try:
            made = tick_one(db, clock, rollout_id, slot=slot, shared=shared)
        except Exception:  # logged; the next tick tries again
            log.exception("rollout %d: the tick failed", rollout_id)
            continue
        if made is not None:
            decisions[made[0].decision] += 1
            applied += made[1].applied
    return TickResult(decisions, applied)


def tick_one(
    db: Database,
    clock: Clock,
    rollout_id: int,
    *,
    slot: datetime | None = None,
    shared: evidence.TickReads | None = None,
) -> tuple[Decision, service.Recorded] | None:
    """One rollout's decision at `clock.now()`, recorded; None when it is no longer running or
    its flag was edited by someone else (which pauses it). `shared`: what the tick read for
    every rollout (read here when None)."""
    with db.session() as session:
        if service.check_manual_edit(session, clock, rollout_id) is not None:
            return None
        rollout = service.get(session, rollout_id)
        if rollout.state != "running" or rollout.stage_started_at is None:
            return None
        shared = shared or evidence.tick_reads(session, [(rollout.environment, rollout.flag)])
        made = decide(*_evidence(session, clock, rollout, shared))
        recorded = service.record_decision(
            session, clock, rollout_id, made.decision, made.reasons, decision_body(made),
            stage=made.stage, extend_until=made.extend_until, slot=slot,
        )  # fmt: skip
    if recorded.applied and made.decision != "hold":
        log.info("rollout %d of %s: %s (%s)", rollout_id, rollout.flag, made.decision,
                 "; ".join(made.reasons))  # fmt: skip
    return made, recorded


def _evidence(
    session: Session, clock: Clock, rollout: RolloutOut, shared: evidence.TickReads
) -> tuple[Plan, Snapshot]:
    """The plan and the snapshot it is judged on: the analysis runs from the first stage with
    the current arm ratio (evidence.analysis_since), whose start the rollout's log gives."""
    assert rollout.stage_started_at is not None
    plan = stored_plan(rollout.plan)
    starts = service.stage_starts(session, rollout.id)
    starts[rollout.stage] = rollout.stage_started_at
    entered = [starts.get(i, rollout.stage_started_at) for i in range(rollout.stage + 1)]
    snapshot = evidence.snapshot(
        session, plan, stage=rollout.stage, stage_started_at=rollout.stage_started_at,
        analysis_since=evidence.analysis_since(plan, rollout.stage, entered),
        now=clock.now(), arms=(rollout.served_as.treatment, rollout.served_as.control),
        page_alerts=shared.page_alerts(plan),
        approved_stages=frozenset(rollout.approvals), dismissed=frozenset(rollout.dismissed),
        extended_until=rollout.extended_until, shared=shared,
    )  # fmt: skip
    return plan, snapshot
