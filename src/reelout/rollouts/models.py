"""Tables of the rollouts domain: each rollout with its plan and position, its append-only
log of commands and decisions, and the decision counts `/metrics` shows."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column

from reelout.db.base import Base, UTCDateTime


class Rollout(Base):
    """One staged rollout of a flag in an environment: its plan (JSON, as given) and where it is.
    `version` grows with every change of the row; a writer that read an older one is refused."""

    __tablename__ = "rollouts"
    __table_args__ = (
        Index("ix_rollouts_page", "created_at", "id"),
        Index("ix_rollouts_flag", "environment", "flag"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    flag: Mapped[str] = mapped_column(String(255))
    environment: Mapped[str] = mapped_column(String(64))
    plan: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16), index=True)
    stage: Mapped[int] = mapped_column(Integer)  # index into the plan's stages
    stage_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_by: Mapped[str] = mapped_column(String(200))
    approvals: Mapped[list[int]] = mapped_column(JSON)  # stage indexes a person approved
    dismissed: Mapped[dict[str, str]] = mapped_column(JSON)  # metric -> the dismissal's reason
    extended_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_decision: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # set once, when the rollout is rolled back: what it was rolled back on (`effects.freeze`)
    frozen_evidence: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # whether its arms are served under keys of its own (`<variant>~r<id>`); false for a
    # rollout made before they had any, which serves the plain names
    own_arm_keys: Mapped[bool] = mapped_column(Boolean, server_default=false())
    # the flag audit entry of the rollout's last write to the flag: a newer one is a manual edit
    flag_audit_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    version: Mapped[int] = mapped_column(Integer)

    __mapper_args__ = {"version_id_col": version}  # SQLAlchemy counts the row's changes


class RolloutLogEntry(Base):
    """Append-only: every command and every decision of a rollout, who and why."""

    __tablename__ = "rollout_log"
    __table_args__ = (Index("ix_rollout_log_page", "rollout_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    rollout_id: Mapped[int] = mapped_column(ForeignKey("rollouts.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    kind: Mapped[str] = mapped_column(String(16))  # command, decision
    who: Mapped[str] = mapped_column(String(200))
    what: Mapped[str] = mapped_column(String(32))  # the command's name or the decision's kind
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    body: Mapped[dict[str, Any]] = mapped_column(JSON)


class RolloutCount(Base):
    """A count that only grows, for `/metrics`: decisions and commands by kind and reason class
    (`reasons.classify`), bumped in the transaction that logs them."""

    __tablename__ = "rollout_counts"

    decision: Mapped[str] = mapped_column(String(32), primary_key=True)
    reason: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[int] = mapped_column(Integer)
