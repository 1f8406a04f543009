"""telemetry day rollups (telemetry_rollups_daily): each UTC day's rows added up over platforms
and app versions, filled from the hour rows, for the whole days of long windows

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-03 07:00:00
"""

from collections.abc import Sequence
from datetime import datetime

from reelout.db.migrations.rollup_tables import create_rollup_table, drop_rollup_table, fill_coarser

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _day(at: datetime) -> datetime:
    return at.replace(hour=0, minute=0, second=0, microsecond=0)


def upgrade() -> None:
    create_rollup_table("telemetry_rollups_daily", "day")
    fill_coarser(("telemetry_rollups_hourly", "hour"), ("telemetry_rollups_daily", "day"), _day)


def downgrade() -> None:
    drop_rollup_table("telemetry_rollups_daily", "day")
