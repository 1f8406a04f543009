"""API shapes of rollouts: a rollout as stored, its log entries, and pages of both."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field


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
