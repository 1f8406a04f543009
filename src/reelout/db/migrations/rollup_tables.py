"""What the migrations that add a rollup table share: the table's shape and the fill that adds
up finer rows into coarser ones. Frozen with those migrations: a change here changes what they
did, so only ever add to it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa
from alembic import op

import reelout.db.base

KEY = ("environment", "metric", "flag", "variant")  # a total holds every platform and version
SUMS = ("n", "sum_x", "sum_x2", "sum_d", "sum_d2", "sum_xd")
CHUNK = 10_000  # rows read per fetch and written per insert
Truncate = Callable[[datetime], datetime]


def create_rollup_table(name: str, at: str) -> None:
    """A totals table (`KEY`, its time column `at`, the sums and the histogram), indexed by time."""
    op.create_table(
        name,
        sa.Column("environment", sa.String(length=64), nullable=False),
        sa.Column("metric", sa.String(length=48), nullable=False),
        sa.Column("flag", sa.String(length=255), nullable=False),
        sa.Column(at, reelout.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("variant", sa.String(length=255), nullable=False),
        *(sa.Column(column, sa.Float(), nullable=False) for column in SUMS),
        sa.Column("hist", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint(
            "environment", "metric", "flag", at, "variant", name=op.f(f"pk_{name}")
        ),
    )
    with op.batch_alter_table(name, schema=None) as batch_op:
        batch_op.create_index(batch_op.f(f"ix_{name}_{at}"), [at], unique=False)


def drop_rollup_table(name: str, at: str) -> None:
    with op.batch_alter_table(name, schema=None) as batch_op:
        batch_op.drop_index(batch_op.f(f"ix_{name}_{at}"))
    op.drop_table(name)


def rollup_table(name: str, at: str) -> sa.TableClause:
    """A rollup table as the fill reads and writes it."""
    columns: list[sa.ColumnClause[Any]] = [sa.column(name_, sa.String()) for name_ in KEY]
    columns += [sa.column(name_, sa.Float()) for name_ in SUMS]
    return sa.table(name, sa.column(at, reelout.db.base.UTCDateTime()), sa.column("hist"), *columns)


def fill_coarser(source: tuple[str, str], target: tuple[str, str], truncate: Truncate) -> None:
    """Add the `source` (table, time column) rows up into `target` rows, per `KEY` and
    `truncate`d time (their histograms too). The source is streamed in key and time order (a
    server-side cursor on PostgreSQL), so a target row's source rows come together and memory
    holds one target row at a time; the target rows go in chunks."""
    bind = op.get_bind()
    into = rollup_table(*target)
    chunk: list[dict[str, Any]] = []
    for row in _added_up(bind, rollup_table(*source), source[1], target[1], truncate):
        chunk.append(row)
        if len(chunk) >= CHUNK:
            bind.execute(sa.insert(into), chunk)
            chunk = []
    if chunk:
        bind.execute(sa.insert(into), chunk)


def _added_up(
    bind: Any, source: sa.TableClause, at: str, target_at: str, truncate: Truncate
) -> Iterator[dict[str, Any]]:
    streamed = (
        sa.select(source)
        .order_by(*(source.c[name] for name in KEY), source.c[at])
        .execution_options(stream_results=True, yield_per=CHUNK)
    )
    current: tuple[Any, ...] | None = None
    sums: list[float] = []
    hist: dict[str, float] = {}
    for row in bind.execute(streamed).mappings():
        key = (*(row[name] for name in KEY), truncate(row[at]))
        if key != current:
            if current is not None:
                yield _row(current, target_at, sums, hist)
            current, sums, hist = key, [0.0] * len(SUMS), {}
        sums = [a + row[name] for a, name in zip(sums, SUMS, strict=True)]
        merge_hist(hist, row["hist"])
    if current is not None:
        yield _row(current, target_at, sums, hist)


def _row(
    key: tuple[Any, ...], at: str, sums: list[float], hist: dict[str, float]
) -> dict[str, Any]:
    return {
        **dict(zip(KEY, key[:-1], strict=True)),
        at: key[-1],
        **dict(zip(SUMS, sums, strict=True)),
        "hist": hist_text(hist),
    }


def merge_hist(into: dict[str, float], text: str | None) -> None:
    """Add a stored histogram (JSON text or None) into `into`."""
    for bucket, count in orjson.loads(text or "{}").items():
        into[bucket] = into.get(bucket, 0.0) + count


def hist_text(hist: dict[str, float]) -> str | None:
    """A merged histogram as stored: buckets in order, the ones that cancelled out left out."""
    kept = {bucket: count for bucket, count in hist.items() if abs(count) >= 1e-9}
    if not kept:
        return None
    return orjson.dumps(dict(sorted(kept.items(), key=lambda item: int(item[0])))).decode()
