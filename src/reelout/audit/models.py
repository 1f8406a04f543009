"""The audit trail's table: one append-only row per change to a key, a webhook or a video."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from reelout.db.base import Base, UTCDateTime


class AuditRecord(Base):
    """Who (an API key's id and name) did what (`action`) to which target, when, why, and the
    change as an RFC 6902 JSON Patch of the target (null when the action changes no state)."""

    __tablename__ = "audit_records"
    __table_args__ = (Index("ix_audit_records_page", "at", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(200), index=True)
    actor_key_id: Mapped[str] = mapped_column(String(32))
    area: Mapped[str] = mapped_column(String(16), index=True)
    action: Mapped[str] = mapped_column(String(48))
    environment: Mapped[str | None] = mapped_column(String(64), nullable=True)
    target_kind: Mapped[str] = mapped_column(String(32))
    target_id: Mapped[str] = mapped_column(String(64), index=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    patch: Mapped[str | None] = mapped_column(Text, nullable=True)
