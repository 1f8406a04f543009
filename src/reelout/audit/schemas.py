"""API shapes of the audit trail: one change, from any area, and a page of them."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field


class Area(StrEnum):
    """What a change is about."""

    flags = "flags"
    keys = "keys"
    webhooks = "webhooks"
    videos = "videos"
    alerts = "alerts"


class ChangeOut(BaseModel):
    id: str = Field(
        description="Unique across areas: `flags-<n>` (a flag audit entry) or `audit-<n>`."
    )
    at: datetime
    area: Area
    action: str = Field(
        description="`key.created`, `key.revoked`, `webhook.created`, `webhook.deleted`, "
        "`webhook.secret_rotated`, `webhook.tested`, `webhook.resent`, `video.deleted`, "
        "`video.reprocessed`, or `flag.<action>` (put, patch, delete, kill, rollout, promote, "
        "revert, init, rollout_arms, rollback, rollout_complete)."
    )
    actor: str = Field(description="The name of the API key that made the change.")
    actor_key_id: str
    environment: str | None = Field(description="The environment changed or the key's one.")
    target_kind: str = Field(description="key, webhook, delivery, video, flag or environment.")
    target_id: str
    reason: str | None
    patch: list[dict[str, Any]] | None = Field(
        description="RFC 6902 JSON Patch of the target; null when the action changes no state."
    )


class ChangePage(BaseModel):
    entries: list[ChangeOut]
    next_cursor: str | None = Field(description="Pass as ?cursor= to get the next page.")
