"""The telemetry tables: raw events (one row per event_id), units' state, rollups, the cursor,
the apps' latest arrivals."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Float, Index, Integer, String, Text, Uuid
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


class TelemetryUnit(Base):
    """A unit's folded state (an upload attempt, a view, a session, a viewer): what the rollups
    need to take its old numbers out when a new event of it arrives."""

    __tablename__ = "telemetry_units"

    environment: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8), primary_key=True)
    unit_id: Mapped[str] = mapped_column(String(300), primary_key=True)
    state: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class RollupSums:
    """The additive sums of a rollup row (see telemetry.sums)."""

    n: Mapped[float] = mapped_column(Float)
    sum_x: Mapped[float] = mapped_column(Float)
    sum_x2: Mapped[float] = mapped_column(Float)
    sum_d: Mapped[float] = mapped_column(Float)
    sum_d2: Mapped[float] = mapped_column(Float)
    sum_xd: Mapped[float] = mapped_column(Float)
    hist: Mapped[str | None] = mapped_column(Text, nullable=True)


class TelemetryRollup(RollupSums, Base):
    """One minute of one metric for one cohort (flag and variant, "" = everyone) on one platform
    and app version: the units' additive sums (see telemetry.sums)."""

    __tablename__ = "telemetry_rollups"

    environment: Mapped[str] = mapped_column(String(64), primary_key=True)
    metric: Mapped[str] = mapped_column(String(48), primary_key=True)
    flag: Mapped[str] = mapped_column(String(255), primary_key=True)
    minute: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True, index=True)
    variant: Mapped[str] = mapped_column(String(255), primary_key=True)
    platform: Mapped[str] = mapped_column(String(64), primary_key=True)
    app_version: Mapped[str] = mapped_column(String(64), primary_key=True)


class TelemetryRollupMinute(RollupSums, Base):
    """One minute of one metric for one cohort, over all platforms and app versions: that
    minute's rows added up, written with them (a row wherever a minute row is). A window's
    ragged ends are read here: one row a minute per metric and variant, not one per platform
    and app version too."""

    __tablename__ = "telemetry_rollups_minutely"

    environment: Mapped[str] = mapped_column(String(64), primary_key=True)
    metric: Mapped[str] = mapped_column(String(48), primary_key=True)
    flag: Mapped[str] = mapped_column(String(255), primary_key=True)
    minute: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True, index=True)
    variant: Mapped[str] = mapped_column(String(255), primary_key=True)


class TelemetryRollupHour(RollupSums, Base):
    """One hour of one metric for one cohort, over all platforms and app versions: its minute
    rows added up, written with them. A window reads its whole hours here (a few rows per hour)
    when they are not whole UTC days (see TelemetryRollupDay), its ragged ends minute by
    minute."""

    __tablename__ = "telemetry_rollups_hourly"

    environment: Mapped[str] = mapped_column(String(64), primary_key=True)
    metric: Mapped[str] = mapped_column(String(48), primary_key=True)
    flag: Mapped[str] = mapped_column(String(255), primary_key=True)
    hour: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True, index=True)
    variant: Mapped[str] = mapped_column(String(255), primary_key=True)


class TelemetryRollupDay(RollupSums, Base):
    """One UTC day of one metric for one cohort, over all platforms and app versions: its
    minute rows added up, written with them. A window of days reads its whole days here, its
    ragged hours from the hour rows and its ragged minutes from the minutes' totals."""

    __tablename__ = "telemetry_rollups_daily"

    environment: Mapped[str] = mapped_column(String(64), primary_key=True)
    metric: Mapped[str] = mapped_column(String(48), primary_key=True)
    flag: Mapped[str] = mapped_column(String(255), primary_key=True)
    day: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True, index=True)
    variant: Mapped[str] = mapped_column(String(255), primary_key=True)


class TelemetryCursor(Base):
    """How far the rollups have read the raw events: the last event id folded in, and the
    arrival time up to which every event is in the rollups (the watermark)."""

    __tablename__ = "telemetry_cursor"

    name: Mapped[str] = mapped_column(String(16), primary_key=True)
    last_id: Mapped[int] = mapped_column(RowId)
    watermark: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class TelemetryArrival(Base):
    """When the apps' own events (source=client) last arrived: the newest `received_at` of a
    client event in an environment carrying a flag (`flag` "" = any client event there). The
    rollups write it as they fold each chunk, so it is as current as the watermark; a rollout's
    tick reads one or two rows by key to see whether the apps' telemetry stopped."""

    __tablename__ = "telemetry_arrivals"

    environment: Mapped[str] = mapped_column(String(64), primary_key=True)
    flag: Mapped[str] = mapped_column(String(255), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
