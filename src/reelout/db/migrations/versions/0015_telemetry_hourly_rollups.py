"""telemetry hour rollups (telemetry_rollups_hourly), filled from the minute rows; rollup rows
indexed by their time (the rollup job reads a chunk's minutes and hours, the purge old ones)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03 00:00:00
"""

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa
from alembic import op

import reelout.db.base

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEY = ("environment", "metric", "flag", "variant")  # an hour row holds every platform and version
SUMS = ("n", "sum_x", "sum_x2", "sum_d", "sum_d2", "sum_xd")
CHUNK = 10_000  # rows read per fetch and written per insert


def _table(name: str, at: str) -> sa.TableClause:
    columns: list[sa.ColumnClause[Any]] = [sa.column(name_, sa.String()) for name_ in KEY]
    columns += [sa.column(name_, sa.Float()) for name_ in SUMS]
    return sa.table(name, sa.column(at, reelout.db.base.UTCDateTime()), sa.column("hist"), *columns)


def upgrade() -> None:
    op.create_table(
        "telemetry_rollups_hourly",
        sa.Column("environment", sa.String(length=64), nullable=False),
        sa.Column("metric", sa.String(length=48), nullable=False),
        sa.Column("flag", sa.String(length=255), nullable=False),
        sa.Column("hour", reelout.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("variant", sa.String(length=255), nullable=False),
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
            "hour",
            "variant",
            name=op.f("pk_telemetry_rollups_hourly"),
        ),
    )
    with op.batch_alter_table("telemetry_rollups", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_telemetry_rollups_minute"), ["minute"], unique=False)
    with op.batch_alter_table("telemetry_rollups_hourly", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_telemetry_rollups_hourly_hour"), ["hour"], unique=False
        )
    _fill()


def _fill() -> None:
    """Add the existing minute rows up per hour (their histograms too). The minute rows are
    streamed (a server-side cursor on PostgreSQL), so memory holds one entry per hour key, not
    every minute row; the hour rows go in chunks."""
    minutes, hours = (
        _table("telemetry_rollups", "minute"),
        _table("telemetry_rollups_hourly", "hour"),
    )
    bind = op.get_bind()
    sums: dict[tuple[object, ...], list[float]] = defaultdict(lambda: [0.0] * len(SUMS))
    hists: dict[tuple[object, ...], dict[str, float]] = defaultdict(dict)
    streamed = sa.select(minutes).execution_options(stream_results=True, yield_per=CHUNK)
    for row in bind.execute(streamed).mappings():
        at: datetime = row["minute"]
        key = (*(row[name] for name in KEY), at.replace(minute=0, second=0, microsecond=0))
        sums[key] = [a + row[name] for a, name in zip(sums[key], SUMS, strict=True)]
        for bucket, count in orjson.loads(row["hist"] or "{}").items():
            hists[key][bucket] = hists[key].get(bucket, 0.0) + count
    rows = [
        {
            **dict(zip(KEY, key[:-1], strict=True)),
            "hour": key[-1],
            **dict(zip(SUMS, values, strict=True)),
            "hist": _hist(hists.get(key)),
        }
        for key, values in sums.items()
    ]
    for start in range(0, len(rows), CHUNK):
        bind.execute(sa.insert(hours), rows[start : start + CHUNK])


def _hist(hist: dict[str, float] | None) -> str | None:
    kept = {bucket: count for bucket, count in (hist or {}).items() if abs(count) >= 1e-9}
    if not kept:
        return None
    return orjson.dumps(dict(sorted(kept.items(), key=lambda item: int(item[0])))).decode()


def downgrade() -> None:
    with op.batch_alter_table("telemetry_rollups", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_telemetry_rollups_minute"))
    op.drop_table("telemetry_rollups_hourly")
