"""a canceled flag schedule records who canceled it and why (flag_schedules.canceled_by, …)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 17:40:00

Schedules canceled before this have no canceler recorded (null).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("flag_schedules", schema=None) as batch_op:
        batch_op.add_column(sa.Column("canceled_by", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("canceled_by_key_id", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("cancel_reason", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("flag_schedules", schema=None) as batch_op:
        batch_op.drop_column("cancel_reason")
        batch_op.drop_column("canceled_by_key_id")
        batch_op.drop_column("canceled_by")
