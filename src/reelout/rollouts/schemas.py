"""API shapes of rollouts: a rollout as stored, its log entries, and pages of both."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field


class ServedAs(BaseModel):
    """The variant keys a rollout's flag serves its arms and its excluded rest as."""

    treatment: str = Field(
        description="The treatment's key: `<treatment>~r<id>`, a copy of the plan's treatment "
        "variant (the plain name for a rollout made before the arms had keys of their own)."
    )
    control: str = Field(description="The control's key: `<control>~r<id>` (or the plain name).")
    excluded: str = Field(description="The excluded rest's key: `<control>~excluded`.")


class RolloutOut(BaseModel):
    id: int
    flag: str
    environment: str
    plan: dict[str, Any] = Field(description="The plan, exactly as it was given.")
    state: str = Field(description="pending, running, paused, completed, rolled_back or aborted.")
    stage: int = Field(description="The current stage's index into the plan's stages.")
    percent: int = Field(description="The current stage's treatment percentage.")
    stage_started_at: datetime | None
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    created_by: str
    approvals: list[int] = Field(description="Stage indexes a person approved.")
    dismissed: dict[str, str] = Field(description="Dismissed metric -> the dismissal's reason.")
    extended_until: datetime | None
    last_decision: dict[str, Any] | None
    frozen_evidence: dict[str, Any] | None = Field(
        default=None,
        description=(
            "Set once, when the rollout is rolled back: when, who, why (`reason`, and its class "
            "`reason_class`), the stage, and `decision`: the decision that rolled it back (for "
            "an operator's rollback, the last decision the controller had made)."
        ),
    )
    served_as: ServedAs = Field(
        description="The variant keys the flag serves the arms as while the rollout runs: the "
        "keys its exposures and telemetry carry."
    )
    allowed: list[str] = Field(description="The operator commands the state allows now.")
    version: int = Field(description="Grows with every change; send it back to act on this one.")


class RolloutPage(BaseModel):
    rollouts: list[RolloutOut]
    next_cursor: str | None


class LogEntryOut(BaseModel):
    id: int
    rollout_id: int
    at: datetime
    kind: Literal["command", "decision"]
    who: str
    what: str = Field(description="The command's name, or the decision's kind.")
    reason: str | None
    body: dict[str, Any]


class LogPage(BaseModel):
    entries: list[LogEntryOut] = Field(description="Oldest first (newest first when asked).")
    more: bool = Field(description="Whether entries after these exist already.")
    next_cursor: str | None = Field(
        description="Pass back as `cursor` for the entries after these, now or once they arrive."
    )


class StageReportOut(BaseModel):
    index: int = Field(description="The stage's index into the plan's stages.")
    percent: int
    entered_at: datetime | None = Field(description="When the rollout entered it (null: never).")
    left_at: datetime | None = Field(
        description="When it left it: the next stage's entry, or the rollout's end in its last "
        "stage (null while it is still in it, or never entered it)."
    )
    duration_seconds: float | None = Field(
        description="left_at (or now, while in it) minus entered_at; pauses included."
    )
    units: dict[str, int] | None = Field(
        description="{treatment, control}: the units per arm the stage's last decision counted "
        "(the most any guardrail had); null when no decision judged a guardrail in it."
    )
    decisions: dict[str, int] = Field(description="Decision kind -> how many the stage had.")


class AnalysisWindow(BaseModel):
    since: datetime = Field(description="The first stage's start.")
    until: datetime = Field(description="The rollout's end, or now while it is not over.")


class RolloutReportOut(BaseModel):
    rollout: RolloutOut = Field(description="The rollout, with its plan exactly as given.")
    generated_at: datetime
    final: bool = Field(
        description="Whether the rollout is over (completed, rolled back, aborted)."
    )
    window: AnalysisWindow | None = Field(description="null until the rollout starts.")
    stages: list[StageReportOut]
    decisions: dict[str, int] = Field(description="Decision kind -> how many, every stage.")
    kpis: dict[str, Any] | None = Field(
        description="The seed's KPI table over the window, treatment against control, as "
        "GET /api/v1/kpis answers it (null until the rollout starts)."
    )
    guardrails: list[dict[str, Any]] = Field(
        description="Each guardrail's latest verdict (the last decision's per_metric, with "
        "`metric` and the `dismissed` reason or null), in the plan's order."
    )
    frozen_evidence: dict[str, Any] | None = Field(
        description="What a rolled-back rollout was rolled back on, when it has it."
    )
    log: list[LogEntryOut] = Field(description="Every command and decision, oldest first.")
