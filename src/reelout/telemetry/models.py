"""The telemetry tables: raw events as received (one row per event_id)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from reelout.db.base import Base, UTCDateTime

RowId = BigInteger().with_variant(Integer, "sqlite")  # SQLite's rowid is the fast insert order


class TelemetryEvent(Base):
    """One accepted event: the columns the rollups and the retention read, and the event itself
    as JSON (`body`). `id` is the order of arrival, the rollups' cursor."""

    __tablename__ = "telemetry_events"
    __table_args__ = (Index("ix_telemetry_events_received_at", "received_at"),)

    id: Mapped[int] = mapped_column(RowId, primary_key=True, autoincrement=True)
    event_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True)
    environment: Mapped[str] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(8))  # client | server
    viewer_id: Mapped[str] = mapped_column(String(255))
    event_time: Mapped[datetime] = mapped_column(UTCDateTime())
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    body: Mapped[str] = mapped_column(Text)
