"""What the rollout store needs from a plan (pure): its flag, environment, arms, stage percentages
and guardrail metrics, read from the plan as stored (JSON, `rollout:` wrapper optional).

`PlanCheck` is the seam where a plan validator plugs in: `create` calls it on the plan it is
given and stores that plan as given. `validated` (the default) is the full check of
`rollouts.plan`; `outline` reads a stored plan again and checks only what the store relies on."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from reelout.errors import BadRequest
from reelout.rollouts.plan import plan_from_data


@dataclass(frozen=True)
class PlanOutline:
    flag: str
    environment: str
    treatment: str
    control: str
    percents: tuple[int, ...]  # each stage's treatment percentage, in order
    metrics: tuple[str, ...]  # the guardrails' metrics


PlanCheck = Callable[[Mapping[str, Any]], PlanOutline]
"""Checks a plan and outlines it; raises a BadRequest (code `INVALID_PLAN`) naming each fault."""


class InvalidPlan(BadRequest):
    code = "INVALID_PLAN"

    def __init__(self, problems: list[str]) -> None:
        super().__init__(
            "the plan is not valid: " + "; ".join(problems), details={"errors": problems}
        )


def body(plan: Mapping[str, Any]) -> Mapping[str, Any]:
    """The plan without its optional `rollout:` wrapper."""
    inner = plan.get("rollout") if list(plan) == ["rollout"] else plan
    return inner if isinstance(inner, Mapping) else {}


def _text(plan: Mapping[str, Any], name: str, problems: list[str]) -> str:
    value = plan.get(name)
    if not isinstance(value, str) or not value:
        problems.append(f"{name}: a non-empty string is required")
        return ""
    return value


def _percents(stages: Any, problems: list[str]) -> tuple[int, ...]:
    if not isinstance(stages, list) or not stages:
        problems.append("stages: a non-empty list is required")
        return ()
    percents: list[int] = []
    for index, stage in enumerate(stages):
        percent = stage.get("percent") if isinstance(stage, Mapping) else None
        if isinstance(percent, bool) or not isinstance(percent, int) or not 1 <= percent <= 100:
            problems.append(f"stages[{index}].percent: an integer from 1 to 100 is required")
        elif percents and percent <= percents[-1]:
            problems.append(f"stages[{index}].percent: must be above {percents[-1]}")
        else:
            percents.append(percent)
    return tuple(percents)


def _metrics(guardrails: Any, problems: list[str]) -> tuple[str, ...]:
    if guardrails is None:
        return ()
    if not isinstance(guardrails, list):
        problems.append("guardrails: a list is required")
        return ()
    metrics = []
    for index, guardrail in enumerate(guardrails):
        metric = guardrail.get("metric") if isinstance(guardrail, Mapping) else None
        if not isinstance(metric, str) or not metric:
            problems.append(f"guardrails[{index}].metric: a metric name is required")
        else:
            metrics.append(metric)
    return tuple(metrics)


def outline(plan: Mapping[str, Any]) -> PlanOutline:
    """The store's reading of a plan; InvalidPlan listing every fault it finds."""
    inner, problems = body(plan), []
    if not inner:
        problems.append("the plan must be an object (optionally under `rollout:`)")
    flag, environment = _text(inner, "flag", problems), _text(inner, "environment", problems)
    treatment = _text(inner, "treatment", problems)
    control_arm = inner.get("control")
    control = control_arm.get("variation") if isinstance(control_arm, Mapping) else None
    if not isinstance(control, str) or not control:
        problems.append("control.variation: a variant key is required")
        control = ""
    elif control == treatment:
        problems.append("control.variation: must differ from the treatment")
    percents = _percents(inner.get("stages"), problems)
    metrics = _metrics(inner.get("guardrails"), problems)
    if problems:
        raise InvalidPlan(problems)
    return PlanOutline(flag, environment, treatment, control, percents, metrics)


def validated(plan: Mapping[str, Any]) -> PlanOutline:
    """The full plan check (`rollouts.plan`, every problem by its path), then the outline."""
    checked = plan_from_data(body(plan))
    return PlanOutline(
        checked.flag,
        checked.environment,
        checked.treatment,
        checked.control.variation,
        tuple(stage.percent for stage in checked.stages),
        tuple(guardrail.metric for guardrail in checked.guardrails),
    )
