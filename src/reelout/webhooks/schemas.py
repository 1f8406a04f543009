"""API shapes of the webhooks domain."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field

from reelout.webhooks.policy import MAX_URL_CHARS

MAX_PREVIOUS_SECRET_SECONDS = 7 * 86400


class DeliveryState(StrEnum):
    pending = "pending"
    delivered = "delivered"
    failed = "failed"


class EndpointCreate(BaseModel):
    url: str = Field(max_length=MAX_URL_CHARS, description="Absolute http(s) URL to POST to.")
    events: list[str] | None = Field(
        default=None,
        max_length=50,
        description='Event types to receive; omitted or ["*"]: every type, present and future.',
    )
    description: str = Field(default="", max_length=500)


class EndpointOut(BaseModel):
    id: str
    url: str
    events: list[str]
    description: str
    created: datetime
    secret_hint: str | None = Field(
        description="The secret's prefix and first 4 characters (`whsec_AbCd…`), to tell which "
        "one a receiver has; null when it cannot be read (the server secret changed: rotate it)."
    )


class EndpointCreated(EndpointOut):
    secret: str = Field(description="The signing secret; shown once, store it now.")


class SecretRotation(BaseModel):
    expire_previous_in_seconds: int = Field(
        default=86400,
        ge=0,
        le=MAX_PREVIOUS_SECRET_SECONDS,
        description="How long deliveries are still signed with the old secret too (0: not at all).",
    )


class DeliveryOut(BaseModel):
    id: str
    event_id: str
    event_type: str
    endpoint_id: str
    url: str
    state: DeliveryState
    attempts: int
    last_status: int | None = Field(description="HTTP status of the last attempt, if one came.")
    last_error: str | None = Field(description="Why the last attempt failed, if it did.")
    last_error_code: str | None = Field(description="A stable code for `last_error`.")
    last_duration_ms: int | None
    last_attempt_at: datetime | None
    failure_reason: str | None = Field(description="Why a failed delivery was given up.")
    created: datetime
    delivered_at: datetime | None
    next_attempt_at: datetime | None = Field(description="When a pending delivery is tried next.")


class AttemptOut(BaseModel):
    number: int
    started_at: datetime
    duration_ms: int
    status_code: int | None
    error: str | None
    error_code: str | None = Field(description="A stable code for `error`.")
    response_content_type: str | None = Field(description="The answer's media type.")
    response_bytes: int | None = Field(
        description="The answer body's length (declared, or counted up to 64 KiB), if known."
    )
    response_excerpt: str | None = Field(
        description="The start of the answer's body: only kept with "
        "REELOUT_WEBHOOK_RESPONSE_EXCERPT_BYTES > 0, for receivers the operator trusts."
    )


class DeliveryDetail(DeliveryOut):
    body: str = Field(description="The exact JSON body every attempt sends.")
    attempt_log: list[AttemptOut]


class DeliveryPage(BaseModel):
    deliveries: list[DeliveryOut]
    next_cursor: str | None = Field(description="Pass as ?cursor= to get the next page.")
