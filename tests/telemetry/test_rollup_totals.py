"""The minute totals, hour rows and day rows (each the minute rows added up over platforms and
app versions, per minute, hour and UTC day): a window read from them gives exactly the sums,
histograms and labels of its minute rows, and the latest minute the hour ladder gave, whatever
the window (across days) and each metric's end; the purge keeps a day while any of its minutes
is kept."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from reelout.clock import ManualClock
from reelout.runtime import Runtime
from reelout.telemetry import rollups
from reelout.telemetry.models import (
    TelemetryRollup,
    TelemetryRollupDay,
    TelemetryRollupHour,
    TelemetryRollupMinute,
)
from reelout.telemetry.sums import RowKey, Sums
from tests.support.settings import make_settings, start_runtime

ENVIRONMENT, FLAG = "production", "new-player"
METRICS = ("error_rate", "crash_rate", "video_startup_seconds", "exposed_units")
QUANTILES = ("video_startup_seconds",)
VARIANTS = ("on", "off")
START = datetime(2026, 3, 1, 20, 0, tzinfo=UTC)  # 56 hours of minutes, across two midnights
MINUTES = 56 * 60
HOUR = timedelta(hours=1)


def _sums(rng: random.Random, quantiles: bool) -> Sums:
    """Numbers in eighths: their sums are exact in any order, so any difference is a row."""
    n = float(rng.randint(0, 3))  # 0: an empty row (its unit moved to another minute)
    x, d = (rng.randint(-40, 400) / 8, rng.randint(0, 80) / 8) if n else (0.0, 0.0)
    hist = {rng.randint(0, 60): float(rng.randint(1, 3))} if quantiles and n else {}
    return Sums(n, x, x * x, d, d * d, x * d, hist)


def _write(rt: Runtime, seed: int) -> None:
    """Minute rows on 3 platforms and 2 app versions (some empty, some of another flag or
    environment) in about one minute in three, through the rollups' own writer, in chunks that
    touch the same rows twice."""
    rng = random.Random(seed)
    chunks: list[dict[tuple[str, RowKey], Sums]] = [{} for _ in range(3)]
    start_ms = int(START.timestamp() * 1000)
    for minute in range(MINUTES):
        for _ in range(rng.choice((0, 0, 0, 0, 1, 2, 3))):
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


def _minute_sums(
    rows: Rows, since: datetime, ends: Mapping[str, datetime], hists: bool
) -> dict[str, dict[str, Sums]]:
    """Each metric's minute rows of the flag in [since, its end), added up per variant."""
    out: dict[str, dict[str, Sums]] = defaultdict(lambda: defaultdict(Sums))
    for row in rows[0]:
        end = ends.get(row.metric)
        if end is None or not since <= row.minute < end:
            continue
        if (row.environment, row.flag) == (ENVIRONMENT, FLAG):
            sums = rollups._sums(row)
            out[row.metric][row.variant].add(
                sums if hists else Sums(sums.n, sums.x, sums.x2, sums.d, sums.d2, sums.xd)
            )
    return {metric: dict(arms) for metric, arms in out.items()}


def _hour_ladder_latest(rows: Rows, since: datetime, until: datetime) -> datetime | None:
    """What latest() gave before the day rows: the newest minute row of the window's ragged
    ends or, in its whole hours, of the newest hour that has an hour row (or that hour)."""
    minutes, hours = rows

    def ours(row: TelemetryRollup | TelemetryRollupHour) -> bool:
        return (row.environment, row.flag) == (ENVIRONMENT, FLAG)

    end = rollups._ceil(until, rollups.MINUTE)
    first = rollups._ceil(rollups._ceil(since, rollups.MINUTE), HOUR)
    last = max(first, end - (end - rollups.EPOCH) % HOUR)
    found = [r.minute for r in minutes if ours(r) and since <= r.minute < until]
    ends = [at for at in found if not first <= at < last]
    if ends and max(ends) >= last:
        return max(ends)
    whole = [r.hour for r in hours if ours(r) and first <= r.hour < last]
    if whole:
        hour = max(whole)
        return max((at for at in found if hour <= at < hour + HOUR), default=hour)
    return max(ends, default=None)


moments = st.datetimes(
    datetime(2026, 3, 1, 19, 50), datetime(2026, 3, 4, 4, 10), timezones=st.just(UTC)
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(since=moments, ends=st.lists(moments, min_size=len(METRICS), max_size=len(METRICS)))
@example(  # ending at midnight: the newest rows are a day's, narrowed to its hour, then minute
    since=datetime(2026, 3, 1, 19, 50, tzinfo=UTC),
    ends=[datetime(2026, 3, 3, tzinfo=UTC)] * len(METRICS),
)
@example(  # whole days only
    since=datetime(2026, 3, 2, tzinfo=UTC), ends=[datetime(2026, 3, 4, tzinfo=UTC)] * len(METRICS)
)
def test_windows_from_the_ladder_equal_the_minute_rows(
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
        labelled = _labelled(rollups.labelled_rows(session, METRICS[0], since, max(ends), None))
    assert cut == _minute_sums(rows, since, until, hists=False)  # each metric at its own end
    assert whole == _minute_sums(rows, since, dict.fromkeys(METRICS, max(ends)), hists=True)
    assert latest == _hour_ladder_latest(rows, since, max(ends))
    wanted: dict[tuple[str, str, str], Sums] = defaultdict(Sums)
    for row in rows[0]:
        if row.metric == METRICS[0] and since <= row.minute < max(ends):
            sums = rollups._sums(row)
            wanted[(row.environment, row.flag, row.variant)].add(
                Sums(sums.n, sums.x, sums.x2, sums.d, sums.d2, sums.xd)
            )
    assert labelled == {key: sums for key, sums in wanted.items()}


def _labelled(found: Iterable[tuple[str, str, str, Sums]]) -> dict[tuple[str, str, str], Sums]:
    out: dict[tuple[str, str, str], Sums] = defaultdict(Sums)
    for environment, flag, variant, sums in found:
        out[(environment, flag, variant)].add(sums)
    return dict(out)


@pytest.mark.parametrize(
    ("table", "at", "step"),
    [
        (TelemetryRollupMinute, "minute", timedelta(minutes=1)),
        (TelemetryRollupHour, "hour", HOUR),
        (TelemetryRollupDay, "day", timedelta(days=1)),
    ],
)
def test_each_total_adds_up_its_minute_rows(
    written: tuple[Runtime, Rows], table: rollups.RollupTable, at: str, step: timedelta
) -> None:
    rt, (minutes, _) = written
    wanted: dict[tuple[object, ...], Sums] = defaultdict(Sums)
    for row in minutes:
        when = row.minute - (row.minute - rollups.EPOCH) % step
        wanted[(row.environment, row.metric, row.flag, when, row.variant)].add(rollups._sums(row))
    with rt.db.read() as session:
        stored: list[Any] = list(session.scalars(select(table)))
    totals = {
        (r.environment, r.metric, r.flag, getattr(r, at), r.variant): rollups._sums(r)
        for r in stored
    }
    if table is TelemetryRollupMinute:  # a total wherever a minute row is, empty ones too
        assert totals == wanted
    else:  # an hour or day row wherever its minutes add up to something
        assert totals == {key: sums for key, sums in wanted.items() if not sums.is_empty()}


def test_the_purge_keeps_an_hour_or_a_day_while_any_of_its_minutes_is_kept(
    tmp_path: Path, database_url: str
) -> None:
    now = START + timedelta(hours=56)  # the data's end; keep its last 36 h 30 min
    settings_ = make_settings(tmp_path, database_url=database_url,
                              telemetry_rollup_retention_days=36.5 / 24)  # fmt: skip
    rt = start_runtime(settings_, ManualClock(now))
    _write(rt, seed=5)
    rollups.purge(rt)
    kept = now - timedelta(hours=36, minutes=30)  # 2026-03-02 15:30
    with rt.db.read() as session:
        minutes = list(session.scalars(select(TelemetryRollupMinute.minute)))
        hours = set(session.scalars(select(TelemetryRollupHour.hour)))
        days = set(session.scalars(select(TelemetryRollupDay.day)))
    assert min(minutes) >= kept
    assert min(hours) == datetime(2026, 3, 2, 15, tzinfo=UTC)  # its minutes from 15:30 are kept
    assert days == {datetime(2026, 3, d, tzinfo=UTC) for d in (2, 3, 4)}  # 1 March all went
    rt.db.dispose()
