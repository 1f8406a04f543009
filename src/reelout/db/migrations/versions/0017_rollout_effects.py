"""rollouts.frozen_evidence (what a rolled-back rollout was rolled back on, set once) and
rollout_counts (decisions and commands by kind and reason class, for /metrics)

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-03 04:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("rollouts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("frozen_evidence", sa.JSON(), nullable=True))
    op.create_table(
        "rollout_counts",
        sa.Column("decision", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("value", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("decision", "reason", name=op.f("pk_rollout_counts")),
    )


def downgrade() -> None:
    op.drop_table("rollout_counts")
    with op.batch_alter_table("rollouts", schema=None) as batch_op:
        batch_op.drop_column("frozen_evidence")
