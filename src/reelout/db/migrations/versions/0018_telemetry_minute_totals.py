"""telemetry minute totals (telemetry_rollups_minutely): each minute's rows added up over
platforms and app versions, filled from the minute rows, for the windows' ragged ends

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-03 05:00:00
"""

from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from reelout.db.migrations.rollup_tables import (
    SUMS,
    create_rollup_table,
    drop_rollup_table,
    hist_text,
    merge_hist,
)

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEY = ("environment", "metric", "flag", "minute", "variant")  # every platform and app version
CHUNK = 10_000  # histograms read per fetch and written per update


def _table(name: str) -> sa.TableClause:
    """The key's columns as stored (the minute too: read and matched as the driver gives it)."""
    columns: list[sa.ColumnClause[Any]] = [sa.column(name_) for name_ in KEY]
    columns += [sa.column(name_, sa.Float()) for name_ in SUMS]
    return sa.table(name, sa.column("hist"), *columns)


def upgrade() -> None:
    create_rollup_table("telemetry_rollups_minutely", "minute")
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
            if current is not None and (hist := hist_text(merged)):
                yield {**{f"k_{n}": v for n, v in zip(KEY, current, strict=True)}, "merged": hist}
            current, merged = key, {}
        merge_hist(merged, row[-1])
    if current is not None and (hist := hist_text(merged)):
        yield {**{f"k_{n}": v for n, v in zip(KEY, current, strict=True)}, "merged": hist}


def downgrade() -> None:
    drop_rollup_table("telemetry_rollups_minutely", "minute")
