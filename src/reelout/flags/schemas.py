"""API shapes of the flag admin (flag sets themselves travel as flagd JSON, not as models)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field


class AuditAction(StrEnum):
    put = "put"
    patch = "patch"
    delete = "delete"
    kill = "kill"
    promote = "promote"
    revert = "revert"
    init = "init"


class EnvironmentOut(BaseModel):
    name: str
    revision: int = Field(description="The current revision; 0: nothing written yet.")
    etag: str
    flags: int = Field(description="How many flags the current set defines.")
    updated_at: datetime | None


class WriteOut(BaseModel):
    environment: str
    revision: int
    etag: str
    changed: bool = Field(description="False when the write changed nothing (no new revision).")


class RevisionOut(BaseModel):
    environment: str
    revision: int
    created_at: datetime
    author: str
    author_key_id: str
    reason: str | None


class RevisionPage(BaseModel):
    revisions: list[RevisionOut]


class DiffSummary(BaseModel):
    added: list[str]
    removed: list[str]
    changed: list[str]


class PromotionOut(BaseModel):
    source: str
    target: str
    source_revision: int
    target_revision: int = Field(description="The target's revision after the call.")
    applied: bool = Field(description="False on a dry run, or when there was nothing to change.")
    patch: list[dict[str, Any]] = Field(description="RFC 6902 JSON Patch from target to source.")
    summary: DiffSummary


class AuditEntryOut(BaseModel):
    id: int
    environment: str
    revision: int
    actor: str = Field(description="The name of the API key that made the change.")
    actor_key_id: str
    at: datetime
    action: AuditAction
    flag: str | None = Field(description="The flag a per-flag call addressed.")
    flags: list[str] = Field(description="Every flag the change touched.")
    diff: list[dict[str, Any]] = Field(description="RFC 6902 JSON Patch from the revision before.")
    reason: str | None
    source_environment: str | None = Field(description="promote: where from; revert: itself.")
    source_revision: int | None = Field(description="The revision promoted or reverted to.")


class AuditPage(BaseModel):
    entries: list[AuditEntryOut]
    next_cursor: str | None = Field(description="Pass as ?cursor= to get the next page.")


class InitEnvironment(BaseModel):
    environment: str
    revision: int
    changed: bool


class InitOut(BaseModel):
    template: str
    environments: list[InitEnvironment]


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
    revision: int | None = Field(description="The revision applying it produced.")
    error: ScheduleError | None = Field(description="Why applying it failed.")


class SchedulePage(BaseModel):
    schedules: list[ScheduleOut]


class StaleWhy(StrEnum):
    disabled = "disabled"
    no_targeting = "no_targeting"
    one_variant_targeting = "one_variant_targeting"


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
