"""telemetry arrivals (telemetry_arrivals): when the apps' own events last arrived, per
environment and flag, for the rollouts' telemetry-lag check

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-03 07:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import reelout.db.base

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """An empty table: the rollups fill it from the next client events they fold (a running
    rollout may hold on telemetry lag until they have, which is one rollup run)."""
    op.create_table(
        "telemetry_arrivals",
        sa.Column("environment", sa.String(length=64), nullable=False),
        sa.Column("flag", sa.String(length=255), nullable=False),
        sa.Column("received_at", reelout.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("environment", "flag", name=op.f("pk_telemetry_arrivals")),
    )


def downgrade() -> None:
    op.drop_table("telemetry_arrivals")
