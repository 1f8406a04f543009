"""scheduled flag changes

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 04:15:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import reelout.db.base

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "flag_schedules",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("environment", sa.String(length=64), nullable=False),
        sa.Column("flag_key", sa.String(length=255), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("payload", sa.Text(), nullable=True),
        sa.Column("apply_at", reelout.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("scheduled_by", sa.String(length=200), nullable=False),
        sa.Column("scheduled_by_key_id", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_at", reelout.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("applied_at", reelout.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("canceled_at", reelout.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("revision", sa.Integer(), nullable=True),
        sa.Column("error_code", sa.String(length=64), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_flag_schedules")),
    )
    with op.batch_alter_table("flag_schedules", schema=None) as batch_op:
        batch_op.create_index(
            "ix_flag_schedules_env_status", ["environment", "status", "apply_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("flag_schedules", schema=None) as batch_op:
        batch_op.drop_index("ix_flag_schedules_env_status")
    op.drop_table("flag_schedules")
