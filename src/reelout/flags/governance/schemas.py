"""API shapes of flag governance: scheduled changes and the stale-flag report."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from reelout.flags.engine.stale import StaleWhy


class ScheduleAction(StrEnum):
    kill = "kill"
    put = "put"
    patch = "patch"
    delete = "delete"


class ScheduleStatus(StrEnum):
    pending = "pending"
    applied = "applied"
    failed = "failed"
    canceled = "canceled"


class ScheduleIn(BaseModel):
    flag: str = Field(min_length=1, max_length=255, description="The flag's key.")
    action: ScheduleAction
    apply_at: datetime = Field(description="When to apply it (ISO 8601; no zone means UTC).")
    definition: dict[str, Any] | None = Field(
        default=None, description="put: the flag's whole flagd definition."
    )
    patch: dict[str, Any] | None = Field(
        default=None, description="patch: a JSON Merge Patch (RFC 7396) of the flag."
    )
    reason: str | None = None


class ScheduleError(BaseModel):
    code: str
    message: str


class ScheduleOut(BaseModel):
    id: int
    environment: str
    flag: str
    action: ScheduleAction
    definition: dict[str, Any] | None
    patch: dict[str, Any] | None
    apply_at: datetime
    status: ScheduleStatus
    scheduled_by: str = Field(description="The name of the API key that scheduled it.")
    scheduled_by_key_id: str
    reason: str | None
    created_at: datetime
    applied_at: datetime | None
    canceled_at: datetime | None
    canceled_by: str | None = Field(
        default=None, description="The name of the API key that canceled it."
    )
    canceled_by_key_id: str | None = None
    cancel_reason: str | None = Field(default=None, description="Why it was canceled.")
    revision: int | None = Field(description="The revision applying it produced.")
    error: ScheduleError | None = Field(description="Why applying it failed.")


class SchedulePage(BaseModel):
    schedules: list[ScheduleOut]


class StaleFlagOut(BaseModel):
    key: str
    variant: str | None = Field(description="The variant everyone gets; null: the code default.")
    value: Any = Field(description="Its value; null when everyone gets the code default.")
    why: StaleWhy
    detail: str
    since: datetime = Field(description="When the last revision that touched the flag was made.")
    since_revision: int


class StaleReport(BaseModel):
    environment: str
    days: int
    revision: int
    flags: list[StaleFlagOut]
