"""Tables of the media domain: the video record and the history of its states."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from reelout.db.base import Base, UTCDateTime


class Video(Base):
    __tablename__ = "videos"
    __table_args__ = (Index("ix_videos_order_stage", "order_id", "stage"),)

    uid: Mapped[str] = mapped_column(String(32), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    modified_at: Mapped[datetime] = mapped_column(UTCDateTime())
    state: Mapped[str] = mapped_column(String(16), default="uploading", index=True)
    source: Mapped[str] = mapped_column(String(16))
    size: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    max_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    meta: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    order_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    stage: Mapped[str | None] = mapped_column(String(16), nullable=True)
    original_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    error_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    error_text: Mapped[str | None] = mapped_column(Text, nullable=True)
    upload_token_hash: Mapped[str | None] = mapped_column(String(64), nullable=True, unique=True)
    upload_token_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    upload_token_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # processing and delivery
    pct_complete: Mapped[float | None] = mapped_column(Float, nullable=True)
    duration: Mapped[float | None] = mapped_column(Float, nullable=True)
    input_width: Mapped[int | None] = mapped_column(Integer, nullable=True)
    input_height: Mapped[int | None] = mapped_column(Integer, nullable=True)
    version: Mapped[str | None] = mapped_column(String(40), nullable=True)  # published folder
    renditions: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    allowed_origins: Mapped[list[str]] = mapped_column(JSON, default=list)
    require_signed_urls: Mapped[bool] = mapped_column(Boolean, default=False)


class VideoStateChange(Base):
    """One change of a video's state, written in the transaction that makes it (media.history);
    deleted with its video."""

    __tablename__ = "video_state_changes"
    __table_args__ = (Index("ix_video_state_changes_video_uid_id", "video_uid", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    video_uid: Mapped[str] = mapped_column(String(32), ForeignKey("videos.uid", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    from_state: Mapped[str | None] = mapped_column(String(16), nullable=True)  # None: created
    to_state: Mapped[str] = mapped_column(String(16))
    error_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    attempt: Mapped[int | None] = mapped_column(Integer, nullable=True)  # the processing job's
