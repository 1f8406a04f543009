"""webhook events name their video (webhook_events.video_uid), so a video's deliveries can be listed

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 16:40:00

Existing events get it from their body (`data.video.uid`, as every video event carries).
"""

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

events = sa.table(
    "webhook_events",
    sa.column("id", sa.String()),
    sa.column("body", sa.Text()),
    sa.column("video_uid", sa.String()),
)


def _video_uid(body: str) -> str | None:
    try:
        uid = json.loads(body)["data"]["video"]["uid"]
    except (ValueError, KeyError, TypeError):
        return None
    return uid if isinstance(uid, str) and len(uid) <= 32 else None


def upgrade() -> None:
    with op.batch_alter_table("webhook_events") as batch:
        batch.add_column(sa.Column("video_uid", sa.String(length=32), nullable=True))
        batch.create_index(batch.f("ix_webhook_events_video_uid"), ["video_uid"], unique=False)
    bind = op.get_bind()
    for event_id, body in bind.execute(sa.select(events.c.id, events.c.body)).all():
        uid = _video_uid(body)
        if uid is not None:
            bind.execute(events.update().where(events.c.id == event_id).values(video_uid=uid))


def downgrade() -> None:
    with op.batch_alter_table("webhook_events") as batch:
        batch.drop_index(batch.f("ix_webhook_events_video_uid"))
        batch.drop_column("video_uid")
