"""The arms the KPIs compare when none are asked for: those of the flag's rollout that ran in the
window (the running one, else the latest), under the keys it served them as."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from reelout.rollouts.models import Rollout
from reelout.rollouts.plan import stored_plan
from reelout.rollouts.served import arms_of
from reelout.telemetry.kpis import RolloutArms


def rollout_arms(
    session: Session, environment: str, flag: str, since: datetime, until: datetime
) -> RolloutArms | None:
    """`kpis.ArmsFinder`: the arms of the rollout of `flag` in `environment` that started last
    among those that ran in [since, until) (a live one is always the latest started); None when
    none did (never started, or ended before the window)."""
    query = (
        select(Rollout)
        .where(
            Rollout.environment == environment,
            Rollout.flag == flag,
            Rollout.started_at.is_not(None),
            Rollout.started_at < until,
            or_(Rollout.ended_at.is_(None), Rollout.ended_at > since),
        )
        .order_by(Rollout.started_at.desc(), Rollout.id.desc())
        .limit(1)
    )
    row = session.scalars(query).first()
    if row is None:
        return None
    plan, split = stored_plan(row.plan), arms_of(row)
    return RolloutArms(
        rollout=row.id,
        state=row.state,
        treatment=plan.treatment,
        control=plan.control.variation,
        served_treatment=split.served_treatment,
        served_control=split.served_control,
    )
