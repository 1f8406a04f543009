"""telemetry hour rollups (telemetry_rollups_hourly), filled from the minute rows; rollup rows
indexed by their time (the rollup job reads a chunk's minutes and hours, the purge old ones)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03 00:00:00
"""

from collections.abc import Sequence
from datetime import datetime

from alembic import op

from reelout.db.migrations.rollup_tables import create_rollup_table, drop_rollup_table, fill_coarser

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _hour(at: datetime) -> datetime:
    return at.replace(minute=0, second=0, microsecond=0)


def upgrade() -> None:
    create_rollup_table("telemetry_rollups_hourly", "hour")
    with op.batch_alter_table("telemetry_rollups", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_telemetry_rollups_minute"), ["minute"], unique=False)
    # the minute rows' platforms and app versions are added up with their minutes
    fill_coarser(("telemetry_rollups", "minute"), ("telemetry_rollups_hourly", "hour"), _hour)


def downgrade() -> None:
    with op.batch_alter_table("telemetry_rollups", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_telemetry_rollups_minute"))
    drop_rollup_table("telemetry_rollups_hourly", "hour")
