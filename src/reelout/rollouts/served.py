"""The keys a rollout serves its arms as: its arms read from its row, and their `served_as`."""

from __future__ import annotations

from reelout.flags.admin import arms
from reelout.rollouts.models import Rollout
from reelout.rollouts.plan import stored_plan
from reelout.rollouts.schemas import ServedAs
from reelout.variant_keys import excluded_variant, rollout_suffix


def arms_of(row: Rollout, percent: int | None = None) -> arms.Arms:
    """The rollout's arms at `percent` (default: its current stage's), served under its suffix
    (none for a rollout made before the arms had keys of their own: the plain names)."""
    plan = stored_plan(row.plan)
    if percent is None:
        percent = plan.percents[row.stage]
    suffix = rollout_suffix(row.id) if row.own_arm_keys else ""
    return arms.Arms(plan.treatment, plan.control.variation, percent, suffix)


def served_as(split: arms.Arms) -> ServedAs:
    """The keys the arms of `split` are served as."""
    return ServedAs(
        treatment=split.served_treatment,
        control=split.served_control,
        excluded=excluded_variant(split.control),
    )
