"""webhook hardening: sealed secrets fit, attempt error codes and answer summaries

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 13:00:00

Existing clear-text secrets are not touched here (a migration has no server secret): they are
sealed by the hourly `webhooks.seal_secrets` job (due at a worker's first tick); until then
they still sign.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("webhook_endpoints") as batch:
        batch.alter_column(
            "secret", existing_type=sa.String(length=100), type_=sa.String(length=255)
        )
        batch.alter_column(
            "previous_secret",
            existing_type=sa.String(length=100),
            type_=sa.String(length=255),
            existing_nullable=True,
        )
    with op.batch_alter_table("webhook_deliveries") as batch:
        batch.add_column(sa.Column("last_error_code", sa.String(length=64), nullable=True))
    with op.batch_alter_table("webhook_attempts") as batch:
        batch.add_column(sa.Column("error_code", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("response_content_type", sa.String(length=128), nullable=True))
        batch.add_column(sa.Column("response_bytes", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("webhook_attempts") as batch:
        batch.drop_column("response_bytes")
        batch.drop_column("response_content_type")
        batch.drop_column("error_code")
    with op.batch_alter_table("webhook_deliveries") as batch:
        batch.drop_column("last_error_code")
    # the secret columns stay 255 wide: sealed secrets (which 0003 code cannot read) would
    # not fit back into 100 characters
