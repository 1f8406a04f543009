"""a video's state history (video_state_changes), one row per change of its state

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 17:20:00

Existing videos get one row each: their current state at their modified time (from null; the
error code and message on the video, if any). What happened before is not known.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from reelout.db.base import UTCDateTime

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BACKFILL = """
INSERT INTO video_state_changes (video_uid, at, from_state, to_state, error_code, reason)
SELECT uid, modified_at, NULL, state, error_code,
       COALESCE(error_text, 'the state when the history began (the earlier steps are not known)')
FROM videos ORDER BY created_at, uid
"""


def upgrade() -> None:
    op.create_table(
        "video_state_changes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("video_uid", sa.String(length=32), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("from_state", sa.String(length=16), nullable=True),
        sa.Column("to_state", sa.String(length=16), nullable=False),
        sa.Column("error_code", sa.String(length=64), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["video_uid"],
            ["videos.uid"],
            name=op.f("fk_video_state_changes_video_uid_videos"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_video_state_changes")),
    )
    with op.batch_alter_table("video_state_changes", schema=None) as batch_op:
        batch_op.create_index(
            "ix_video_state_changes_video_uid_id", ["video_uid", "id"], unique=False
        )
    op.execute(BACKFILL)


def downgrade() -> None:
    with op.batch_alter_table("video_state_changes", schema=None) as batch_op:
        batch_op.drop_index("ix_video_state_changes_video_uid_id")
    op.drop_table("video_state_changes")
