"""Tables of the flag admin: each environment's head, its flag-set revisions and the audit log."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    ForeignKey,
    Index,
    Integer,
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
