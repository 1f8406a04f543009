"""alert rules, routing, instances and history, silences, receivers, groups, deliveries

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 19:21:52

Numbered 0012 on the alerts branch (the telemetry tables take 0011); `down_revision` is
set to 0011 when the branches meet.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import reelout.db.base

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "alert_deliveries",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("receiver_id", sa.String(length=64), nullable=False),
        sa.Column("event", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("rule_id", sa.String(length=64), nullable=True),
        sa.Column("group_key", sa.String(length=32), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_error_code", sa.String(length=64), nullable=True),
        sa.Column("last_attempt_at", reelout.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", reelout.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", reelout.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_deliveries")),
    )
    with op.batch_alter_table("alert_deliveries", schema=None) as batch_op:
        batch_op.create_index("ix_alert_deliveries_page", ["created_at", "id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_alert_deliveries_receiver_id"), ["receiver_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_alert_deliveries_state"), ["state"], unique=False)

    op.create_table(
        "alert_evaluator",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("last_at", reelout.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_alert_evaluator")),
    )
    op.create_table(
        "alert_groups",
        sa.Column("receiver_id", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=32), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("created_at", reelout.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_notified_at", reelout.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("notified", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("receiver_id", "key", name=op.f("pk_alert_groups")),
    )
    op.create_table(
        "alert_history",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("fingerprint", sa.String(length=32), nullable=False),
        sa.Column("rule_id", sa.String(length=64), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("from_state", sa.String(length=16), nullable=False),
        sa.Column("to_state", sa.String(length=16), nullable=False),
        sa.Column("at", reelout.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_history")),
    )
    with op.batch_alter_table("alert_history", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_alert_history_fingerprint"), ["fingerprint"], unique=False
        )
        batch_op.create_index("ix_alert_history_page", ["at", "id"], unique=False)
        batch_op.create_index(batch_op.f("ix_alert_history_rule_id"), ["rule_id"], unique=False)

    op.create_table(
        "alert_instances",
        sa.Column("fingerprint", sa.String(length=32), nullable=False),
        sa.Column("rule_id", sa.String(length=64), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("state_since", reelout.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("active_at", reelout.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("fired_at", reelout.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_met_at", reelout.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("resolved_at", reelout.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_eval_at", reelout.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("numerator", sa.Float(), nullable=False),
        sa.Column("denominator", sa.Float(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("annotations", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("fingerprint", name=op.f("pk_alert_instances")),
    )
    with op.batch_alter_table("alert_instances", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_alert_instances_rule_id"), ["rule_id"], unique=False)

    op.create_table(
        "alert_receivers",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("secret", sa.String(length=255), nullable=True),
        sa.Column("matchers", sa.JSON(), nullable=False),
        sa.Column("send_resolved", sa.Boolean(), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=False),
        sa.Column("created_at", reelout.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_receivers")),
    )
    op.create_table(
        "alert_routing",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("updated_at", reelout.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_routing")),
    )
    op.create_table(
        "alert_rules",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", reelout.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", reelout.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=200), nullable=False),
        sa.Column("next_run_at", reelout.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_eval_at", reelout.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_rules")),
    )
    op.create_table(
        "alert_silences",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("matchers", sa.JSON(), nullable=False),
        sa.Column("starts_at", reelout.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ends_at", reelout.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", reelout.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expired_by", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_silences")),
    )
    with op.batch_alter_table("alert_silences", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_alert_silences_ends_at"), ["ends_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("alert_silences", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alert_silences_ends_at"))

    op.drop_table("alert_silences")
    op.drop_table("alert_rules")
    op.drop_table("alert_routing")
    op.drop_table("alert_receivers")
    with op.batch_alter_table("alert_instances", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alert_instances_rule_id"))

    op.drop_table("alert_instances")
    with op.batch_alter_table("alert_history", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alert_history_rule_id"))
        batch_op.drop_index("ix_alert_history_page")
        batch_op.drop_index(batch_op.f("ix_alert_history_fingerprint"))

    op.drop_table("alert_history")
    op.drop_table("alert_groups")
    op.drop_table("alert_evaluator")
    with op.batch_alter_table("alert_deliveries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alert_deliveries_state"))
        batch_op.drop_index(batch_op.f("ix_alert_deliveries_receiver_id"))
        batch_op.drop_index("ix_alert_deliveries_page")

    op.drop_table("alert_deliveries")
