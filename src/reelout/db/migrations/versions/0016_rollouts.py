"""rollouts (a flag's staged rollout: its plan as given, state, stage, approvals, dismissed
metrics, last decision, optimistic version) and rollout_log (its append-only commands and
decisions)

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03 03:26:33
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import reelout.db.base

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "rollouts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("flag", sa.String(length=255), nullable=False),
        sa.Column("environment", sa.String(length=64), nullable=False),
        sa.Column("plan", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("stage", sa.Integer(), nullable=False),
        sa.Column("stage_started_at", reelout.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", reelout.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("started_at", reelout.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("ended_at", reelout.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("approvals", sa.JSON(), nullable=False),
        sa.Column("dismissed", sa.JSON(), nullable=False),
        sa.Column("extended_until", reelout.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_decision", sa.JSON(), nullable=True),
        sa.Column("flag_audit_id", sa.Integer(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rollouts")),
    )
    with op.batch_alter_table("rollouts", schema=None) as batch_op:
        batch_op.create_index("ix_rollouts_flag", ["environment", "flag"], unique=False)
        batch_op.create_index("ix_rollouts_page", ["created_at", "id"], unique=False)
        batch_op.create_index(batch_op.f("ix_rollouts_state"), ["state"], unique=False)

    op.create_table(
        "rollout_log",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("rollout_id", sa.Integer(), nullable=False),
        sa.Column("at", reelout.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("who", sa.String(length=200), nullable=False),
        sa.Column("what", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["rollout_id"], ["rollouts.id"], name=op.f("fk_rollout_log_rollout_id_rollouts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rollout_log")),
    )
    with op.batch_alter_table("rollout_log", schema=None) as batch_op:
        batch_op.create_index("ix_rollout_log_page", ["rollout_id", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("rollout_log", schema=None) as batch_op:
        batch_op.drop_index("ix_rollout_log_page")

    op.drop_table("rollout_log")
    with op.batch_alter_table("rollouts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rollouts_state"))
        batch_op.drop_index("ix_rollouts_page")
        batch_op.drop_index("ix_rollouts_flag")

    op.drop_table("rollouts")
