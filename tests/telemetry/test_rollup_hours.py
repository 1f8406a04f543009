"""The hour rollups: each hour row is its minute rows added up (over every platform and app
version), late events included, and a window reads exactly its minutes (whole UTC days from the
day rows, whole hours from the hour rows, the ragged ends from the minutes' totals)."""

from __future__ import annotations

import itertools
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from reelout.clock import ManualClock
from reelout.telemetry import kpis, rollups
from reelout.telemetry.models import TelemetryRollup, TelemetryRollupDay, TelemetryRollupHour
from reelout.telemetry.sums import Sums
from tests.support.jobs import run_jobs
from tests.support.live import LiveServer, StartLive
from tests.telemetry.conftest import client_key

FLAG = "new-player"
START = datetime(2026, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)


@given(
    since=st.datetimes(datetime(2026, 1, 1), datetime(2026, 1, 3), timezones=st.just(UTC)),
    length=st.timedeltas(timedelta(0), timedelta(days=4)),
)
def test_a_window_reads_exactly_its_minutes(since: datetime, length: timedelta) -> None:
    until = since + length
    covered: list[datetime] = []
    steps = {TelemetryRollupDay: DAY, TelemetryRollupHour: timedelta(hours=1)}
    spans = rollups.spans(since, until)
    for (table, _, end), (next_table, start, _) in itertools.pairwise(spans):
        assert end == start and table is not next_table  # contiguous, coarsest in the middle
    end = rollups._ceil(until, timedelta(minutes=1))
    first_day, last_day = rollups._ceil(since, timedelta(days=1)), end - (end - rollups.EPOCH) % DAY
    assert ((TelemetryRollupDay, first_day, last_day) in spans) == (first_day < last_day)
    for table, start, end in spans:
        step = steps.get(table, timedelta(minutes=1))
        assert (start - rollups.EPOCH) % step == (end - rollups.EPOCH) % step == timedelta(0)
        at = start
        while at < end:
            covered += [at + timedelta(minutes=m) for m in range(int(step / timedelta(minutes=1)))]
            at += step
    first = since.replace(second=0, microsecond=0)
    first += timedelta(minutes=1) if first < since else timedelta(0)
    wanted = []
    while first < until:
        wanted.append(first)
        first += timedelta(minutes=1)
    assert covered == wanted


def view(variant: str, at: datetime, view_id: str, startup_ms: int) -> list[dict[str, Any]]:
    common = {"viewer_id": f"viewer-{view_id}", "view_id": view_id, "flags": {FLAG: variant}}
    common |= {"platform": "ios" if len(view_id) % 2 else "web"}
    return [
        {"event_id": str(uuid.uuid4()), "type": "play_request", "client_time": at.isoformat(),
         **common},
        {"event_id": str(uuid.uuid4()), "type": "playing",
         "client_time": (at + timedelta(milliseconds=startup_ms)).isoformat(), **common},
    ]  # fmt: skip


def send(live: LiveServer, key: str, events: list[dict[str, Any]]) -> None:
    with live.client(token=key) as app:
        reply = app.post("/api/v1/telemetry/events", json=events)
    assert reply.status_code == 200 and reply.json()["accepted"] == len(events), reply.text


def rows(live: LiveServer, table: Any) -> list[Any]:
    with live.runtime.db.read() as session:
        return list(session.scalars(select(table)))


@pytest.fixture
def reelout(live_servers: StartLive) -> tuple[LiveServer, str, ManualClock]:
    clock = ManualClock(START + timedelta(hours=4))
    live = live_servers(clock=clock, telemetry_rollup_delay_seconds=0)
    return live, client_key(live), clock


def test_each_hour_row_adds_up_its_minutes_late_events_included(
    reelout: tuple[LiveServer, str, ManualClock],
) -> None:
    live, key, clock = reelout
    events = []
    for i in range(40):  # views every 5 minutes and a bit over 3 hours and more
        at = START + timedelta(minutes=5 * i + 1, seconds=7 * i % 60)
        events += view(("on", "off")[i % 2], at, f"v{i}", 800 + 97 * i)
    send(live, key, events)
    run_jobs(live.runtime, tick=True)
    late = []  # a late player_ready moves each of these views an hour earlier
    for i in (13, 14, 25):
        late_event = view(("on", "off")[i % 2], START + timedelta(minutes=5 * i - 61), f"v{i}", 0)
        late.append({**late_event[0], "type": "player_ready"})
    send(live, key, late)
    clock.advance(60)
    run_jobs(live.runtime, tick=True)

    by_hour: dict[tuple[Any, ...], Sums] = defaultdict(Sums)
    for row in rows(live, TelemetryRollup):
        hour = row.minute.replace(minute=0)
        by_hour[(row.environment, row.metric, row.flag, hour, row.variant)].add(rollups._sums(row))
    hours = {
        (r.environment, r.metric, r.flag, r.hour, r.variant): r
        for r in rows(live, TelemetryRollupHour)
    }
    assert set(hours) == {key_ for key_, sums in by_hour.items() if not sums.is_empty()}
    for key_, row in hours.items():
        got, want = rollups._sums(row), by_hour[key_]
        assert (got.n, got.hist) == (want.n, want.hist), key_
        assert got.x == pytest.approx(want.x) and got.x2 == pytest.approx(want.x2), key_

    # and the KPI table over a window with ragged ends counts the views that started in it
    until = START + timedelta(hours=3, minutes=2, seconds=30)
    table = kpis.kpi_table(
        live.runtime, "production", timedelta(hours=3), flag=FLAG, until=until,
        metrics=["video_startup_seconds"],
    )  # fmt: skip
    started = {f"v{i}": START + timedelta(minutes=5 * i + 1, seconds=7 * i % 60) for i in range(40)}
    for i in (13, 14, 25):
        started[f"v{i}"] = START + timedelta(minutes=5 * i - 61)
    minute = {name: at.replace(second=0) for name, at in started.items()}  # where a unit counts
    inside = [i for i in range(40) if until - timedelta(hours=3) <= minute[f"v{i}"] < until]
    row = table.rows[0]
    assert row.control is not None and row.treatment is not None
    assert (row.control.variant, row.treatment.variant) == ("off", "on")
    assert row.treatment.n == len([i for i in inside if i % 2 == 0])
    assert row.control.n == len([i for i in inside if i % 2 == 1])
