"""telemetry minute totals (telemetry_rollups_minutely): each minute's rows added up over
platforms and app versions, filled from the minute rows, for the windows' ragged ends

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-03 05:00:00
"""

from collections.abc import Iterator, Sequence
from typing import Any

import orjson
import sqlalchemy as sa
from alembic import op

import reelout.db.base

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEY = ("environment", "metric", "flag", "minute", "variant")  # every platform and app version
SUMS = ("n", "sum_x", "sum_x2", "sum_d", "sum_d2", "sum_xd")
CHUNK = 10_000  # histograms read per fetch and written per update


def _table(name: str) -> sa.TableClause:
    """The key's columns as stored (the minute too: read and matched as the driver gives it)."""
    columns: list[sa.ColumnClause[Any]] = [sa.column(name_) for name_ in KEY]
    columns += [sa.column(name_, sa.Float()) for name_ in SUMS]
    return sa.table(name, sa.column("hist"), *columns)


def upgrade() -> None:
    op.create_table(
        "telemetry_rollups_minutely",
        sa.Column("environment", sa.String(length=64), nullable=False),
        sa.Column("metric", sa.String(length=48), nullable=False),
        sa.Column("flag", sa.String(length=255), nullable=False),
        sa.Column("minute", reelout.db.base.UTCDateTime(timezone=True), nullable=False),
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
            "minute",
            "variant",
            name=op.f("pk_telemetry_rollups_minutely"),
        ),
    )
    with op.batch_alter_table("telemetry_rollups_minutely", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_telemetry_rollups_minutely_minute"), ["minute"], unique=False
        )
    _fill()


def _fill() -> None:
    """The sums added up by the database (one row per key, as many as there are keys); then the
    histograms, streamed in key order (a server-side cursor on PostgreSQL) and merged one key
    at a time, so memory holds one key's, written in chunks."""
    minutes, totals = _table("telemetry_rollups"), _table("telemetry_rollups_minutely")
    keys = [minutes.c[name] for name in KEY]
    summed = sa.select(*keys, *(sa.func.sum(minutes.c[name]) for name in SUMS)).group_by(*keys)
    bind = op.get_bind()
    bind.execute(sa.insert(totals).from_select([*KEY, *SUMS], summed))
    update = (
        sa.update(totals)
        .where(*(totals.c[name] == sa.bindparam(f"k_{name}") for name in KEY))
        .values(hist=sa.bindparam("merged"))
    )
    chunk: list[dict[str, Any]] = []
    for values in _merged_hists(bind, minutes):
        chunk.append(values)
        if len(chunk) >= CHUNK:
            bind.execute(update, chunk)
            chunk = []
    if chunk:
        bind.execute(update, chunk)


def _merged_hists(bind: Any, minutes: sa.TableClause) -> Iterator[dict[str, Any]]:
    keys = [minutes.c[name] for name in KEY]
    streamed = (
        sa.select(*keys, minutes.c.hist)
        .where(minutes.c.hist.is_not(None))
        .order_by(*keys)
        .execution_options(stream_results=True, yield_per=CHUNK)
    )
    current: tuple[Any, ...] | None = None
    merged: dict[str, float] = {}
    for row in bind.execute(streamed):
        key = tuple(row[:-1])
        if key != current:
            if current is not None and (hist := _hist(merged)):
                yield {**{f"k_{n}": v for n, v in zip(KEY, current, strict=True)}, "merged": hist}
            current, merged = key, {}
        for bucket, count in orjson.loads(row[-1]).items():
            merged[bucket] = merged.get(bucket, 0.0) + count
    if current is not None and (hist := _hist(merged)):
        yield {**{f"k_{n}": v for n, v in zip(KEY, current, strict=True)}, "merged": hist}


def _hist(hist: dict[str, float]) -> str | None:
    kept = {bucket: count for bucket, count in hist.items() if abs(count) >= 1e-9}
    if not kept:
        return None
    return orjson.dumps(dict(sorted(kept.items(), key=lambda item: int(item[0])))).decode()


def downgrade() -> None:
    with op.batch_alter_table("telemetry_rollups_minutely", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_telemetry_rollups_minutely_minute"))
    op.drop_table("telemetry_rollups_minutely")
