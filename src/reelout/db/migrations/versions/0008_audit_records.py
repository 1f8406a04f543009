"""the audit trail: changes to keys, webhooks and videos (who, what, when, why, the JSON Patch)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 16:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import reelout.db.base

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_records",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", reelout.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("actor_key_id", sa.String(length=32), nullable=False),
        sa.Column("area", sa.String(length=16), nullable=False),
        sa.Column("action", sa.String(length=48), nullable=False),
        sa.Column("environment", sa.String(length=64), nullable=True),
        sa.Column("target_kind", sa.String(length=32), nullable=False),
        sa.Column("target_id", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("patch", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_records")),
    )
    with op.batch_alter_table("audit_records", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_records_actor"), ["actor"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_records_area"), ["area"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_records_target_id"), ["target_id"], unique=False)
        batch_op.create_index("ix_audit_records_page", ["at", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("audit_records", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_records_page")
        batch_op.drop_index(batch_op.f("ix_audit_records_target_id"))
        batch_op.drop_index(batch_op.f("ix_audit_records_area"))
        batch_op.drop_index(batch_op.f("ix_audit_records_actor"))
    op.drop_table("audit_records")
