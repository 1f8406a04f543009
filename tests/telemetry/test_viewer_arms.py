"""A flag's viewer metrics count each viewer in each arm from their first exposure to it, from
real telemetry (sent over HTTP, rolled up by the job, read back as window sums and as the KPI
table): viewers seen before the window who are exposed in it count there, and viewers a stage
moves from the excluded group into treatment count in treatment; everyone's rows still count
each viewer once, from their first event."""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from reelout.clock import ManualClock
from reelout.telemetry import rollups
from reelout.telemetry.sums import Sums
from reelout.variant_keys import excluded_variant
from tests.support.jobs import run_jobs
from tests.support.live import LiveServer, StartLive
from tests.telemetry.conftest import client_key

FLAG = "new-player"
EXCLUDED = excluded_variant("off")
T0 = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)  # the window: [T0, T0 + 1 h)
METRICS = ["complaint_rate", "video_startup_log_ms", "exposed_units"]
SLOW, FAST = 4000, 1000  # treatment's and control's startup, ms


def _event(type_: str, viewer: str, at: datetime, carried: str | None, **fields: Any) -> Any:
    flags = {FLAG: carried} if carried else {}
    return {"event_id": str(uuid.uuid4()), "type": type_, "viewer_id": viewer,
            "client_time": at.isoformat(), "flags": flags, **fields}  # fmt: skip


def visit(viewer: str, at: datetime, variant: str | None, startup_ms: int) -> list[Any]:
    """An exposure to `variant` (none without one) and a view that starts in `startup_ms`."""
    view = {"view_id": uuid.uuid4().hex}
    played = at + timedelta(milliseconds=startup_ms)
    events = [_event("play_request", viewer, at, variant, autoplay=False, **view),
              _event("playing", viewer, played, variant, **view)]  # fmt: skip
    if variant:
        events.append(_event("exposure", viewer, at, variant, flag=FLAG, variant=variant))
    return events


def complaint(viewer: str, at: datetime, variant: str) -> Any:
    return _event("complaint", viewer, at, variant, kind="quality")


def send(live: LiveServer, key: str, events: list[Any]) -> None:
    with live.client(token=key) as app:
        reply = app.post("/api/v1/telemetry/events", json=events)
    assert reply.status_code == 200, reply.text
    assert reply.json()["accepted"] == len(events), reply.text


@pytest.fixture
def live(live_servers: StartLive, database_url: str) -> LiveServer:
    """The story, rolled up in two goes: what happened before the window, then in it (on
    SQLite and on PostgreSQL: the `database_url` fixture gives both)."""
    clock = ManualClock(T0 - timedelta(hours=1))
    server = live_servers(clock=clock, telemetry_rollup_delay_seconds=0, database_url=database_url)
    key = client_key(server)
    before = T0 - timedelta(hours=2)
    send(server, key, [e for i in range(4) for e in visit(f"returning-{i}", before, None, FAST)])
    run_jobs(server.runtime, tick=True)
    events = []
    for i in range(4):  # (a) seen two hours ago, exposed to treatment in the window
        events += visit(f"returning-{i}", T0 + timedelta(minutes=10), "on", SLOW)
        events += [complaint(f"returning-{i}", T0 + timedelta(minutes=12), "on")] if i < 2 else []
    for i in range(4):  # (b) excluded first, then moved to treatment by the next stage
        events += visit(f"moved-{i}", T0 + timedelta(minutes=5), EXCLUDED, FAST)
        events += visit(f"moved-{i}", T0 + timedelta(minutes=20), "on", SLOW)
        events += [complaint(f"moved-{i}", T0 + timedelta(minutes=25), "on")] if i < 1 else []
    for i in range(4):  # the control: new viewers
        events += visit(f"control-{i}", T0 + timedelta(minutes=10), "off", FAST)
    clock.set(T0 + timedelta(hours=1))
    send(server, key, events)
    run_jobs(server.runtime, tick=True)
    return server


def window(live: LiveServer, flag: str) -> dict[str, dict[str, Sums]]:
    with live.runtime.db.read() as session:
        return rollups.window_sums(
            session, "production", METRICS, flag, T0, T0 + timedelta(hours=1)
        )


def test_each_arm_counts_its_viewers_from_their_first_exposure_to_it(live: LiveServer) -> None:
    sums = window(live, FLAG)
    complaints, startups = sums["complaint_rate"], sums["video_startup_log_ms"]
    assert (complaints["on"].n, complaints["on"].x) == (8, 3), "4 returning and 4 moved"
    assert (complaints["off"].n, complaints["off"].x) == (4, 0)
    assert (complaints[EXCLUDED].n, complaints[EXCLUDED].x) == (4, 0), "each arm its own"
    assert startups["on"].n == 8
    assert startups["on"].x / 8 == pytest.approx(math.log(SLOW)), "their views in treatment"
    assert startups["off"].x / startups["off"].n == pytest.approx(math.log(FAST))
    exposed = sums["exposed_units"]
    assert {variant: s.n for variant, s in exposed.items()} == {"on": 8, "off": 4, EXCLUDED: 4}


def test_everyone_counts_each_viewer_once_from_their_first_event(live: LiveServer) -> None:
    everyone = window(live, "")
    complaints = everyone["complaint_rate"][""]
    assert (complaints.n, complaints.x) == (8, 1), "the moved and the control: new in it"
    assert "exposed_units" not in everyone, "an exposure counts in its arm alone"


def test_the_kpi_table_compares_the_arms_viewer_metrics(live: LiveServer) -> None:
    params: dict[str, Any] = {
        "environment": "production", "flag": FLAG, "window": "1h", "control": "off",
        "treatment": "on", "until": (T0 + timedelta(hours=1)).isoformat(),
        "metric": ["complaint_rate", "video_startup_log_ms"],
    }  # fmt: skip
    with live.client() as admin:
        reply = admin.get("/api/v1/kpis", params=params)
    assert reply.status_code == 200, reply.text
    rows = {row["metric"]: row for row in reply.json()["kpis"]}
    complaints, startup = rows["complaint_rate"], rows["video_startup_log_ms"]
    assert (complaints["treatment"]["n"], complaints["control"]["n"]) == (8, 4)
    assert complaints["treatment"]["value"] == pytest.approx(3 / 8)
    assert startup["treatment"]["value"] == pytest.approx(math.log(SLOW))
    assert startup["control"]["value"] == pytest.approx(math.log(FAST))
