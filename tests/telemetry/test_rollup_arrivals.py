"""The apps' last events: as the rollups fold events, they note when a client event last arrived
per environment and flag (and overall); the server's own events never count, a time never moves
back, and the rows go with the rollups' retention."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from reelout.clock import ManualClock
from reelout.runtime import Runtime
from reelout.telemetry import rollups
from reelout.telemetry.service import ingest
from tests.support.settings import make_settings, start_runtime

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def event(type_: str, at: datetime, **fields: Any) -> dict[str, Any]:
    return {"event_id": str(uuid.uuid4()), "type": type_, "viewer_id": "u1",
            "client_time": at.isoformat(), **fields}  # fmt: skip


def arrivals(rt: Runtime, environment: str, flag: str) -> tuple[datetime | None, ...]:
    with rt.db.read() as session:
        return rollups.read_client_arrivals(session, environment, flag)


def test_client_events_carrying_a_flag_note_its_last_arrival(tmp_path: Path) -> None:
    clock = ManualClock(T0)
    rt = start_runtime(make_settings(tmp_path, telemetry_rollup_delay_seconds=0), clock)
    ingest(rt, "production", [event("app_session", T0, status="exited", session_id="s1",
                                    flags={"new-player": "on", "other": "off"})])  # fmt: skip
    clock.set(T0 + timedelta(minutes=5))
    ingest(rt, "production", [event("exposure", T0, flag="exposed-only", variant="on")])
    ingest(rt, "staging", [event("app_session", T0, status="exited", session_id="s2")])
    clock.set(T0 + timedelta(minutes=9))  # the server's own: OFREP's exposures, upload facts
    server = event("exposure", T0, flag="new-player", variant="on", flags={"new-player": "on"})
    ingest(rt, "production", [server], source="server")
    assert arrivals(rt, "production", "new-player") == (None, None)  # not rolled up yet
    rollups.roll_up(rt)

    five = T0 + timedelta(minutes=5)
    assert arrivals(rt, "production", "new-player") == (T0, five)
    assert arrivals(rt, "production", "other") == (T0, five)
    assert arrivals(rt, "production", "exposed-only") == (five, five)  # an app's own exposure
    assert arrivals(rt, "staging", "new-player") == (None, five)
    assert arrivals(rt, "nowhere", "new-player") == (None, None)
    rt.db.dispose()


def test_a_time_never_moves_back_and_goes_with_the_rollups_retention(
    tmp_path: Path, database_url: str
) -> None:
    clock = ManualClock(T0)
    settings = make_settings(
        tmp_path, telemetry_rollup_retention_days=30, database_url=database_url
    )
    rt = start_runtime(settings, clock)
    later, earlier = T0 + timedelta(minutes=3), T0 + timedelta(minutes=1)
    for at in (later, earlier):  # a chunk whose ids landed out of time order (PostgreSQL)
        with rt.db.session() as session:
            rollups.note_arrivals(session, {("production", "new-player"): at})
    assert arrivals(rt, "production", "new-player")[0] == later

    clock.set(later + timedelta(days=30))
    rollups.purge(rt)
    assert arrivals(rt, "production", "new-player")[0] == later  # exactly 30 days: kept
    clock.set(later + timedelta(days=30, seconds=1))
    rollups.purge(rt)
    assert arrivals(rt, "production", "new-player")[0] is None
    rt.db.dispose()
