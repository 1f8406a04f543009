"""The minute totals (each minute's rows added up over platforms and app versions): a window read
from them and the hour rows gives exactly the sums, histograms and latest minute that it gave
from the minute rows and the hour rows, whatever the window and each metric's end."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from reelout.runtime import Runtime
from reelout.telemetry import rollups
from reelout.telemetry.models import TelemetryRollup, TelemetryRollupHour, TelemetryRollupMinute
from reelout.telemetry.sums import RowKey, Sums
from tests.support.settings import make_settings, start_runtime

ENVIRONMENT, FLAG = "production", "new-player"
METRICS = ("error_rate", "crash_rate", "video_startup_seconds", "exposed_units")
QUANTILES = ("video_startup_seconds",)
VARIANTS = ("on", "off")
START = datetime(2026, 3, 1, 22, 0, tzinfo=UTC)  # 4 hours of minutes, across midnight
MINUTES = 240


def _sums(rng: random.Random, quantiles: bool) -> Sums:
    """Numbers in eighths: their sums are exact in any order, so any difference is a row."""
    n = float(rng.randint(0, 3))  # 0: an empty row (its unit moved to another minute)
    x, d = (rng.randint(-40, 400) / 8, rng.randint(0, 80) / 8) if n else (0.0, 0.0)
    hist = {rng.randint(0, 60): float(rng.randint(1, 3))} if quantiles and n else {}
    return Sums(n, x, x * x, d, d * d, x * d, hist)


def _write(rt: Runtime, seed: int) -> None:
    """Minute rows on 3 platforms and 2 app versions (some empty, some of another flag or
    environment), through the rollups' own writer, in chunks that touch the same rows twice."""
    rng = random.Random(seed)
    chunks: list[dict[tuple[str, RowKey], Sums]] = [{} for _ in range(3)]
    start_ms = int(START.timestamp() * 1000)
    for minute in range(MINUTES):
        for _ in range(rng.randint(0, 8)):
            metric = rng.choice(METRICS)
            environment = rng.choice((ENVIRONMENT, ENVIRONMENT, "staging"))
            key = RowKey(start_ms + minute * 60_000, rng.choice((FLAG, FLAG, FLAG, "other")),
                         rng.choice(VARIANTS), rng.choice(("ios", "android", "web")),
                         rng.choice(("1.0", "2.0")), metric)  # fmt: skip
            chunk = rng.choice(chunks)
            sums = _sums(rng, metric in QUANTILES)
            if (environment, key) in chunk:
                chunk[(environment, key)].add(sums)
            else:
                chunk[(environment, key)] = sums
    for chunk in chunks:
        with rt.db.session() as session:
            rollups._apply(session, chunk)


Rows = tuple[list[TelemetryRollup], list[TelemetryRollupHour]]


@pytest.fixture
def written(tmp_path: Path, database_url: str) -> Iterator[tuple[Runtime, Rows]]:
    rt = start_runtime(make_settings(tmp_path, database_url=database_url))
    _write(rt, seed=13)
    with rt.db.read() as session:
        minutes = list(session.scalars(select(TelemetryRollup)))
        hours = list(session.scalars(select(TelemetryRollupHour)))
    yield rt, (minutes, hours)
    rt.db.dispose()


def _rows_in(
    rows: Rows, table: rollups.RollupTable, start: datetime, end: datetime
) -> list[TelemetryRollup | TelemetryRollupHour]:
    """The old reading of a span: its minute rows (every platform and version), or its hours."""
    minutes, hours = rows
    if table is TelemetryRollupHour:
        return [row for row in hours if start <= row.hour < end and row.flag == FLAG
                and row.environment == ENVIRONMENT]  # fmt: skip
    return [row for row in minutes if start <= row.minute < end and row.flag == FLAG
            and row.environment == ENVIRONMENT]  # fmt: skip


def _old_sums(
    rows: Rows, since: datetime, ends: Mapping[str, datetime], hists: bool
) -> dict[str, dict[str, Sums]]:
    """What window_sums(_until) read before the totals: each span's rows added up."""
    out: dict[str, dict[str, Sums]] = defaultdict(lambda: defaultdict(Sums))
    for metric, end in ends.items():
        for table, start, stop in rollups.spans(since, end):
            for row in _rows_in(rows, table, start, stop):
                if row.metric == metric:
                    sums = rollups._sums(row)
                    out[metric][row.variant].add(
                        sums if hists else Sums(sums.n, sums.x, sums.x2, sums.d, sums.d2, sums.xd)
                    )
    return {metric: dict(arms) for metric, arms in out.items()}


def _old_latest(rows: Rows, since: datetime, until: datetime) -> datetime | None:
    """What latest() read before the totals: the newest span with a row, an hour narrowed to
    its minute rows."""
    for table, start, end in reversed(rollups.spans(since, until)):
        found = [r.hour if isinstance(r, TelemetryRollupHour) else r.minute
                 for r in _rows_in(rows, table, start, end)]  # fmt: skip
        if not found:
            continue
        if table is TelemetryRollupHour:
            hour = max(found)
            inside = [
                r.minute for r in _rows_in(rows, TelemetryRollup, hour, hour + timedelta(hours=1))
            ]
            return max(inside, default=hour)
        return max(found)
    return None


moments = st.datetimes(
    datetime(2026, 3, 1, 21, 50), datetime(2026, 3, 2, 2, 10), timezones=st.just(UTC)
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(since=moments, ends=st.lists(moments, min_size=len(METRICS), max_size=len(METRICS)))
def test_windows_from_the_totals_equal_those_from_the_minute_rows(
    written: tuple[Runtime, Rows], since: datetime, ends: list[datetime]
) -> None:
    rt, rows = written
    until = dict(zip(METRICS, ends, strict=True))
    with rt.db.read() as session:
        cut = rollups.window_sums_until(session, ENVIRONMENT, FLAG, since, until, VARIANTS)
        whole = rollups.window_sums(session, ENVIRONMENT, list(METRICS), FLAG, since, max(ends),
                                    QUANTILES)  # fmt: skip
        latest = rollups.latest(session, ENVIRONMENT, list(METRICS), FLAG, VARIANTS, since,
                                max(ends))  # fmt: skip
    assert cut == _old_sums(rows, since, until, hists=False)  # each metric at its own end
    assert whole == _old_sums(rows, since, dict.fromkeys(METRICS, max(ends)), hists=True)
    assert latest == _old_latest(rows, since, max(ends))


def test_each_total_adds_up_its_minute_rows(written: tuple[Runtime, Rows]) -> None:
    rt, (minutes, _) = written
    wanted: dict[tuple[object, ...], Sums] = defaultdict(Sums)
    for row in minutes:
        key = (row.environment, row.metric, row.flag, row.minute, row.variant)
        wanted[key].add(rollups._sums(row))
    with rt.db.read() as session:
        totals = {
            (r.environment, r.metric, r.flag, r.minute, r.variant): rollups._sums(r)
            for r in session.scalars(select(TelemetryRollupMinute))
        }
    assert totals == wanted  # a total wherever a minute row is, empty ones too
