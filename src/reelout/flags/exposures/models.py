"""Table of the exposure log: one row per key, flag, variant and UTC day."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, Index, PrimaryKeyConstraint, String
from sqlalchemy.orm import Mapped, mapped_column

from reelout.db.base import Base, UTCDateTime


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
