"""API shapes of the alerts domain (the rule format itself is `rules`)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from reelout.alerts.routing import MatchOp
from reelout.alerts.rules import LABEL_NAME_PATTERN, RULE_ID_PATTERN, Duration, Labels
from reelout.webhooks.policy import MAX_URL_CHARS


class RuleOut(BaseModel):
    id: str
    kind: str
    enabled: bool
    rule: dict[str, Any] = Field(description="The rule as stored, in the rule format.")
    updated_at: datetime
    updated_by: str
    last_eval_at: datetime | None = Field(description="When it was last evaluated.")
    last_error: str | None = Field(description="Why its last evaluation failed, if it did.")
    next_run_at: datetime | None = Field(description="A digest's next scheduled time.")


class ApplyOut(BaseModel):
    created: list[str]
    updated: list[str]
    unchanged: list[str]
    routing: str = Field(description="`updated`, `unchanged` or `absent` (not in the document).")


class AlertOut(BaseModel):
    fingerprint: str = Field(description="The alert's identity: rule id and sorted labels.")
    rule: str
    state: str = Field(description="pending, firing, recovering, resolved or nodata.")
    labels: dict[str, str]
    annotations: dict[str, str]
    value: float | None
    numerator: float
    denominator: float
    details: dict[str, float] = Field(description="Burn rates per window, for burn-rate rules.")
    since: datetime = Field(description="When it entered its state.")
    active_at: datetime | None
    fired_at: datetime | None
    resolved_at: datetime | None
    last_eval_at: datetime | None
    silenced_by: list[str] = Field(description="Ids of the silences muting it now.")
    inhibited_by: list[str] = Field(description="Fingerprints of the alerts inhibiting it now.")


class AlertList(BaseModel):
    alerts: list[AlertOut]


class TransitionOut(BaseModel):
    id: int
    fingerprint: str
    rule: str
    labels: dict[str, str]
    from_state: str
    to_state: str
    at: datetime
    value: float | None
    summary: str | None


class HistoryPage(BaseModel):
    transitions: list[TransitionOut]
    next_cursor: str | None = Field(description="Pass as ?cursor= to get the next page.")


class MatcherIn(BaseModel):
    name: str = Field(pattern=LABEL_NAME_PATTERN)
    value: str = Field(max_length=200)
    op: MatchOp = MatchOp.eq


class SilenceIn(BaseModel):
    matchers: list[MatcherIn] = Field(min_length=1, max_length=16)
    starts_at: datetime | None = Field(default=None, description="Default: now.")
    ends_at: datetime | None = Field(default=None, description="When it ends (or `duration`).")
    duration: Duration | None = Field(default=None, description='E.g. "2h", from `starts_at`.')
    comment: str = Field(min_length=1, max_length=2000, description="Why; shown with it.")
    created_by: str | None = Field(
        default=None, max_length=200, description="Who asked for it (default: the key's name)."
    )


class SilenceState(StrEnum):
    pending = "pending"
    active = "active"
    expired = "expired"


class SilenceOut(BaseModel):
    id: str
    matchers: list[MatcherIn]
    starts_at: datetime
    ends_at: datetime
    comment: str
    created_by: str
    created_at: datetime
    state: SilenceState
    expired_by: str | None


class ReceiverKind(StrEnum):
    webhook = "webhook"  # JSON, signed like the media webhooks
    slack = "slack"  # a Slack (or compatible) incoming webhook


class ReceiverIn(BaseModel):
    id: str = Field(pattern=RULE_ID_PATTERN, description="A name, e.g. `on-call`.")
    kind: ReceiverKind
    url: str = Field(max_length=MAX_URL_CHARS)
    matchers: Labels = Field(
        default_factory=dict,
        description="Label → value an alert must have to come here (none: every alert).",
    )
    send_resolved: bool = True
    description: str = Field(default="", max_length=500)


class ReceiverOut(BaseModel):
    id: str
    kind: ReceiverKind
    url: str
    matchers: dict[str, str]
    send_resolved: bool
    description: str
    created_at: datetime
    secret_hint: str | None = Field(
        description="A webhook receiver's secret, its prefix and 4 characters; null for Slack."
    )


class ReceiverCreated(ReceiverOut):
    secret: str | None = Field(
        description="A webhook receiver's signing secret; shown once, store it now."
    )


class DeliveryState(StrEnum):
    pending = "pending"
    delivered = "delivered"
    failed = "failed"


class DeliveryOut(BaseModel):
    id: str
    receiver_id: str
    event: str
    status: str
    rule_id: str | None
    url: str
    state: DeliveryState
    attempts: int
    last_status: int | None
    last_error: str | None
    last_error_code: str | None
    last_attempt_at: datetime | None
    created_at: datetime
    delivered_at: datetime | None


class DeliveryPage(BaseModel):
    deliveries: list[DeliveryOut]
    next_cursor: str | None
