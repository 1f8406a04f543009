"""telemetry rollups: units, minute rows, cursor

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 20:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import reelout.db.base

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "telemetry_cursor",
        sa.Column("name", sa.String(length=16), nullable=False),
        sa.Column("last_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("watermark", reelout.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_telemetry_cursor")),
    )
    op.create_table(
        "telemetry_rollups",
        sa.Column("environment", sa.String(length=64), nullable=False),
        sa.Column("metric", sa.String(length=48), nullable=False),
        sa.Column("flag", sa.String(length=255), nullable=False),
        sa.Column("minute", reelout.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("variant", sa.String(length=255), nullable=False),
        sa.Column("platform", sa.String(length=64), nullable=False),
        sa.Column("app_version", sa.String(length=64), nullable=False),
        sa.Column("n", sa.Float(), nullable=False),
        sa.Column("sum_x", sa.Float(), nullable=False),
        sa.Column("sum_x2", sa.Float(), nullable=False),
        sa.Column("sum_d", sa.Float(), nullable=False),
        sa.Column("sum_d2", sa.Float(), nullable=False),
        sa.Column("sum_xd", sa.Float(), nullable=False),
        sa.Column("hist", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint(
            "environment",
            "metric",
            "flag",
            "minute",
            "variant",
            "platform",
            "app_version",
            name=op.f("pk_telemetry_rollups"),
        ),
    )
    op.create_table(
        "telemetry_units",
        sa.Column("environment", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("unit_id", sa.String(length=300), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("updated_at", reelout.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("environment", "kind", "unit_id", name=op.f("pk_telemetry_units")),
    )
    with op.batch_alter_table("telemetry_units", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_telemetry_units_updated_at"), ["updated_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("telemetry_units", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_telemetry_units_updated_at"))

    op.drop_table("telemetry_units")
    op.drop_table("telemetry_rollups")
    op.drop_table("telemetry_cursor")
