"""Tables of the flag admin: each environment's head, its flag-set revisions, the audit log,
the exposure log and scheduled changes."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    Date,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from reelout.db.base import Base, UTCDateTime


class FlagEnvironment(Base):
    """One row per environment that has been written: its latest revision (the row writers lock)."""

    __tablename__ = "flag_environments"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    revision: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class FlagSetRevision(Base):
    """A whole flag set as stored text; an environment's current set is its latest revision."""

    __tablename__ = "flag_set_revisions"
    __table_args__ = (UniqueConstraint("environment", "revision"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    environment: Mapped[str] = mapped_column(ForeignKey("flag_environments.name"))
    revision: Mapped[int] = mapped_column(Integer)
    document: Mapped[str] = mapped_column(Text)  # the exact flagd JSON served by GET
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    author_key_id: Mapped[str] = mapped_column(String(32))
    author_name: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)


class FlagAuditEntry(Base):
    """Append-only: who changed which environment's flags, when, how (a JSON Patch) and why."""

    __tablename__ = "flag_audit"
    __table_args__ = (Index("ix_flag_audit_page", "at", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    environment: Mapped[str] = mapped_column(String(64), index=True)
    revision: Mapped[int] = mapped_column(Integer)
    actor: Mapped[str] = mapped_column(String(200), index=True)
    actor_key_id: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    action: Mapped[str] = mapped_column(String(16), index=True)
    flag_key: Mapped[str | None] = mapped_column(String(255), nullable=True)
    diff: Mapped[str] = mapped_column(Text)  # RFC 6902 JSON Patch from the previous revision
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    source_environment: Mapped[str | None] = mapped_column(String(64), nullable=True)
    source_revision: Mapped[int | None] = mapped_column(Integer, nullable=True)


class FlagAuditKey(Base):
    """Each flag an audit entry changed, so the log can be filtered by flag."""

    __tablename__ = "flag_audit_keys"

    audit_id: Mapped[int] = mapped_column(ForeignKey("flag_audit.id"), primary_key=True)
    flag_key: Mapped[str] = mapped_column(String(255), primary_key=True, index=True)


class FlagExposure(Base):
    """The exposure log: a targeting key saw a variant of a flag on a UTC day (one row a day)."""

    __tablename__ = "flag_exposures"
    __table_args__ = (
        # day first: the retention purge and a user's variants on a day read it; the counts per
        # flag read the index. Two B-trees a row, on the table every new user writes to.
        PrimaryKeyConstraint("day", "environment", "flag_key", "targeting_key", "variant"),
        Index(
            "ix_flag_exposures_counts", "environment", "flag_key", "day", "variant", "targeting_key"
        ),
    )

    environment: Mapped[str] = mapped_column(String(64))
    day: Mapped[date] = mapped_column(Date)
    flag_key: Mapped[str] = mapped_column(String(255))
    targeting_key: Mapped[str] = mapped_column(String(255))
    variant: Mapped[str] = mapped_column(String(255))
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())


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
    revision: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    error_message: Mapped[str | None] = mapped_column(Text, nullable=True)
