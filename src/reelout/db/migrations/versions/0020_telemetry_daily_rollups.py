"""telemetry day rollups (telemetry_rollups_daily): each UTC day's rows added up over platforms
and app versions, filled from the hour rows, for the whole days of long windows

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-03 07:00:00
"""

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa
from alembic import op

import reelout.db.base

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEY = ("environment", "metric", "flag", "variant")  # a day row holds every platform and version
SUMS = ("n", "sum_x", "sum_x2", "sum_d", "sum_d2", "sum_xd")
CHUNK = 10_000  # hour rows read per fetch, day rows written per insert


def _table(name: str, at: str) -> sa.TableClause:
    columns: list[sa.ColumnClause[Any]] = [sa.column(name_, sa.String()) for name_ in KEY]
    columns += [sa.column(name_, sa.Float()) for name_ in SUMS]
    return sa.table(name, sa.column(at, reelout.db.base.UTCDateTime()), sa.column("hist"), *columns)


def upgrade() -> None:
    op.create_table(
        "telemetry_rollups_daily",
        sa.Column("environment", sa.String(length=64), nullable=False),
        sa.Column("metric", sa.String(length=48), nullable=False),
        sa.Column("flag", sa.String(length=255), nullable=False),
        sa.Column("day", reelout.db.base.UTCDateTime(timezone=True), nullable=False),
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
            "day",
            "variant",
            name=op.f("pk_telemetry_rollups_daily"),
        ),
    )
    with op.batch_alter_table("telemetry_rollups_daily", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_telemetry_rollups_daily_day"), ["day"], unique=False)
    _fill()


def _fill() -> None:
    """Add the existing hour rows up per UTC day (their histograms too). The hour rows are
    streamed in key and time order (a server-side cursor on PostgreSQL), so a day's hours come
    together and memory holds one day row at a time; the day rows go in chunks."""
    hours, days = (
        _table("telemetry_rollups_hourly", "hour"),
        _table("telemetry_rollups_daily", "day"),
    )
    bind = op.get_bind()
    chunk: list[dict[str, Any]] = []
    for row in _days(bind, hours):
        chunk.append(row)
        if len(chunk) >= CHUNK:
            bind.execute(sa.insert(days), chunk)
            chunk = []
    if chunk:
        bind.execute(sa.insert(days), chunk)


def _days(bind: Any, hours: sa.TableClause) -> Iterator[dict[str, Any]]:
    streamed = (
        sa.select(hours)
        .order_by(*(hours.c[name] for name in KEY), hours.c.hour)
        .execution_options(stream_results=True, yield_per=CHUNK)
    )
    current: tuple[Any, ...] | None = None
    sums: list[float] = []
    hist: dict[str, float] = {}
    for row in bind.execute(streamed).mappings():
        at: datetime = row["hour"]
        key = (*(row[name] for name in KEY), at.replace(hour=0, minute=0, second=0, microsecond=0))
        if key != current:
            if current is not None:
                yield _row(current, sums, hist)
            current, sums, hist = key, [0.0] * len(SUMS), {}
        sums = [a + row[name] for a, name in zip(sums, SUMS, strict=True)]
        for bucket, count in orjson.loads(row["hist"] or "{}").items():
            hist[bucket] = hist.get(bucket, 0.0) + count
    if current is not None:
        yield _row(current, sums, hist)


def _row(key: tuple[Any, ...], sums: list[float], hist: dict[str, float]) -> dict[str, Any]:
    return {
        **dict(zip(KEY, key[:-1], strict=True)),
        "day": key[-1],
        **dict(zip(SUMS, sums, strict=True)),
        "hist": _hist(hist),
    }


def _hist(hist: dict[str, float]) -> str | None:
    kept = {bucket: count for bucket, count in hist.items() if abs(count) >= 1e-9}
    if not kept:
        return None
    return orjson.dumps(dict(sorted(kept.items(), key=lambda item: int(item[0])))).decode()


def downgrade() -> None:
    with op.batch_alter_table("telemetry_rollups_daily", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_telemetry_rollups_daily_day"))
    op.drop_table("telemetry_rollups_daily")
