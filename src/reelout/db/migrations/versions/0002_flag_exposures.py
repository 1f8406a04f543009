"""the exposure log: which targeting key saw which variant of a flag, per day

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 04:15:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import reelout.db.base

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "flag_exposures",
        sa.Column("environment", sa.String(length=64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("flag_key", sa.String(length=255), nullable=False),
        sa.Column("targeting_key", sa.String(length=255), nullable=False),
        sa.Column("variant", sa.String(length=255), nullable=False),
        sa.Column("first_seen_at", reelout.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(
            "day",
            "environment",
            "flag_key",
            "targeting_key",
            "variant",
            name=op.f("pk_flag_exposures"),
        ),
    )
    with op.batch_alter_table("flag_exposures", schema=None) as batch_op:
        batch_op.create_index(
            "ix_flag_exposures_counts",
            ["environment", "flag_key", "day", "variant", "targeting_key"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("flag_exposures", schema=None) as batch_op:
        batch_op.drop_index("ix_flag_exposures_counts")
    op.drop_table("flag_exposures")
