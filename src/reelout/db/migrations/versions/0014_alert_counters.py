"""alert counters: firings, resolutions and notifications that outlive the pruned history

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03 00:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "alert_counters",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("labels", sa.String(length=400), nullable=False),
        sa.Column("value", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name", "labels", name=op.f("pk_alert_counters")),
    )


def downgrade() -> None:
    op.drop_table("alert_counters")
