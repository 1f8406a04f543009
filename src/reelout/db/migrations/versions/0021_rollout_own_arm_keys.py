"""rollouts.own_arm_keys: whether a rollout serves its arms under keys of its own
(`<variant>~r<id>`); false for a rollout made before, which serves the plain variant names

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-03 08:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Existing rollouts get false: a running one goes on serving (and reading) the plain
    names its flag serves."""
    with op.batch_alter_table("rollouts") as batch:
        batch.add_column(
            sa.Column("own_arm_keys", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("rollouts") as batch:
        batch.drop_column("own_arm_keys")
