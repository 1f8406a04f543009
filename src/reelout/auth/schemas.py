"""API shapes of the auth domain."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field


class Scope(StrEnum):
    """admin: everything. client: evaluate one environment's flags (safe to ship in an app).
    server: a client key that may also read the environment's whole flag set (in-process SDKs)."""

    admin = "admin"
    client = "client"
    server = "server"


class KeyCreate(BaseModel):
    name: str = Field(default="", max_length=200)
    scope: Scope
    environment: str | None = None


class KeyInfo(BaseModel):
    id: str
    name: str
    scope: Scope
    environment: str | None
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class KeyCreated(KeyInfo):
    key: str = Field(description="The secret; shown once, store it now.")
