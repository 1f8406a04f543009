"""One controller tick on given evidence, as the controller makes it: the stored plan, a snapshot
with the arms' data given (not measured), the real `decide`, then `record_decision`."""

from __future__ import annotations

from typing import Any

from reelout.clock import Clock
from reelout.rollouts import service
from reelout.rollouts.decide import ArmData, Snapshot, decide, decision_body
from reelout.rollouts.plan import stored_plan
from reelout.runtime import Runtime


def decide_on(
    rt: Runtime, clock: Clock, rollout: int, treatment: ArmData, control: ArmData, **seen: Any
) -> service.Recorded:
    """The tick's decision recorded; the telemetry is fresh unless `seen` says otherwise (any
    other Snapshot field may be given there too)."""
    with rt.db.session() as session:
        now = service.get(session, rollout)
        assert now.stage_started_at is not None
        values: dict[str, Any] = {"telemetry_watermark": clock.now(),
                                  "last_exposure_at": clock.now(), **seen}  # fmt: skip
        snapshot = Snapshot(
            now=clock.now(), stage=now.stage, stage_started_at=now.stage_started_at,
            treatment=treatment, control=control,
            approved_stages=frozenset(now.approvals), dismissed=frozenset(now.dismissed),
            extended_until=now.extended_until, **values,
        )  # fmt: skip
        made = decide(stored_plan(now.plan), snapshot)
        return service.record_decision(
            session, clock, rollout, made.decision, made.reasons, decision_body(made),
            stage=made.stage, extend_until=made.extend_until,
        )  # fmt: skip
