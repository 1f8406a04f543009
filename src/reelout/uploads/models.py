"""Tables of the uploads domain: one row per tus upload (its bytes live in the upload store)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, Boolean, String
from sqlalchemy.orm import Mapped, mapped_column

from reelout.db.base import Base, UTCDateTime


class Upload(Base):
    __tablename__ = "uploads"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    video_uid: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    length: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    defer_length: Mapped[bool] = mapped_column(Boolean, default=False)
    metadata_pairs: Mapped[list[list[str | None]]] = mapped_column(JSON, default=list)
    concat: Mapped[str | None] = mapped_column(String(8), nullable=True)
    concat_parts: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_by: Mapped[str] = mapped_column(String(64), index=True)  # a link's uploads
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
