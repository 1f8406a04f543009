"""Table of scheduled flag changes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from reelout.db.base import Base, UTCDateTime


class FlagSchedule(Base):
    """A flag change to apply at a time: pending until its job applies it (or it is canceled)."""

    __tablename__ = "flag_schedules"
    __table_args__ = (Index("ix_flag_schedules_env_status", "environment", "status", "apply_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    environment: Mapped[str] = mapped_column(String(64))
    flag_key: Mapped[str] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(16))  # kill, put, patch, delete
    payload: Mapped[str | None] = mapped_column(Text, nullable=True)  # JSON: definition or patch
    apply_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16))  # pending, applied, failed, canceled
    scheduled_by: Mapped[str] = mapped_column(String(200))
    scheduled_by_key_id: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    applied_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    canceled_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    canceled_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    canceled_by_key_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    cancel_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    revision: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    error_message: Mapped[str | None] = mapped_column(Text, nullable=True)
