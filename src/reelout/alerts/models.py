"""Tables of the alerts domain: rules, routing, alert instances and their history, silences,
receivers, notification groups, deliveries, and the evaluator's lock row."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Float, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from reelout.db.base import Base, UTCDateTime


class AlertRuleRow(Base):
    """A rule as stored: its document (JSON, as `rules.dump` writes it) and its health."""

    __tablename__ = "alert_rules"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    enabled: Mapped[bool] = mapped_column(Boolean)
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_by: Mapped[str] = mapped_column(String(200))
    next_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)  # digests
    last_eval_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)


class AlertRoutingRow(Base):
    """The one routing document (grouping, waits, inhibition); row id 1."""

    __tablename__ = "alert_routing"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    body: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_by: Mapped[str] = mapped_column(String(200))


class AlertInstance(Base):
    """One alert identity that is not inactive, as the evaluator left it."""

    __tablename__ = "alert_instances"

    fingerprint: Mapped[str] = mapped_column(String(32), primary_key=True)
    rule_id: Mapped[str] = mapped_column(String(64), index=True)
    labels: Mapped[dict[str, str]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16))
    state_since: Mapped[datetime] = mapped_column(UTCDateTime())
    active_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    fired_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_met_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_eval_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    value: Mapped[float | None] = mapped_column(Float, nullable=True)
    numerator: Mapped[float] = mapped_column(Float)
    denominator: Mapped[float] = mapped_column(Float)
    details: Mapped[dict[str, float]] = mapped_column(JSON)
    annotations: Mapped[dict[str, str]] = mapped_column(JSON)


class AlertTransition(Base):
    """The history: every state change of every alert."""

    __tablename__ = "alert_history"
    __table_args__ = (Index("ix_alert_history_page", "at", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    fingerprint: Mapped[str] = mapped_column(String(32), index=True)
    rule_id: Mapped[str] = mapped_column(String(64), index=True)
    labels: Mapped[dict[str, str]] = mapped_column(JSON)
    from_state: Mapped[str] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    value: Mapped[float | None] = mapped_column(Float, nullable=True)
    summary: Mapped[str | None] = mapped_column(Text, nullable=True)


class AlertSilence(Base):
    __tablename__ = "alert_silences"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    matchers: Mapped[list[dict[str, str]]] = mapped_column(JSON)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    comment: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expired_by: Mapped[str | None] = mapped_column(String(200), nullable=True)


class AlertReceiver(Base):
    __tablename__ = "alert_receivers"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # webhook, slack
    url: Mapped[str] = mapped_column(String(2048))
    # sealed like webhook secrets (webhooks.secretbox); none for Slack
    secret: Mapped[str | None] = mapped_column(String(255), nullable=True)
    matchers: Mapped[dict[str, str]] = mapped_column(JSON)
    send_resolved: Mapped[bool] = mapped_column(Boolean)
    description: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AlertGroupRow(Base):
    """What a receiver's notification group remembers (routing.Group)."""

    __tablename__ = "alert_groups"

    receiver_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(32), primary_key=True)
    labels: Mapped[dict[str, str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    notified: Mapped[list[dict[str, Any]]] = mapped_column(JSON)


class AlertDelivery(Base):
    """One message to one receiver and how sending it went: the delivery log."""

    __tablename__ = "alert_deliveries"
    __table_args__ = (Index("ix_alert_deliveries_page", "created_at", "id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    receiver_id: Mapped[str] = mapped_column(String(64), index=True)
    event: Mapped[str] = mapped_column(String(32))  # alert.notification, alert.digest, alert.test
    status: Mapped[str] = mapped_column(String(16))  # firing, resolved, a digest's verdict, test
    rule_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    group_key: Mapped[str | None] = mapped_column(String(32), nullable=True)
    body: Mapped[str] = mapped_column(Text)  # the exact JSON every attempt sends
    url: Mapped[str] = mapped_column(String(2048))
    state: Mapped[str] = mapped_column(String(16), index=True)  # pending, delivered, failed
    attempts: Mapped[int] = mapped_column(Integer)
    last_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    last_error_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    job_id: Mapped[int | None] = mapped_column(Integer, nullable=True)


class AlertEvaluatorLock(Base):
    """The row every evaluation locks first: evaluations run one at a time, in time order."""

    __tablename__ = "alert_evaluator"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    last_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AlertCounter(Base):
    """A count that only grows, for `/metrics`: the history and the delivery log are pruned,
    these rows are not. One row per counter and label values (a JSON array, in the counter's
    label order); bumped in the transaction that records what it counts."""

    __tablename__ = "alert_counters"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    labels: Mapped[str] = mapped_column(String(400), primary_key=True)
    value: Mapped[int] = mapped_column(Integer)
