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
    rollout = "rollout"
    rollout_arms = "rollout_arms"  # a staged rollout's treatment / excluded / control split
    rollback = "rollback"  # a staged rollout gave everyone its control
    rollout_complete = "rollout_complete"  # a staged rollout gave everyone its treatment


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


class RolloutIn(BaseModel):
    """A rollout percentage: the share of users a flag's two-way `fractional` split gives."""

    percent: int = Field(
        ge=0, le=100, description="Percent of users (by targetingKey) who get the variant."
    )
    variant: str | None = Field(
        default=None,
        description=(
            "The variant rolled out; default: the split's side that is not the default "
            "variant (for a flag without targeting, its only non-default variant)."
        ),
    )
