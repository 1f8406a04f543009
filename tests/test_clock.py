"""The simulation-only fast clock: REELOUT_CLOCK_SPEED makes a server's clock run that many times
faster than real time, and /healthz says the time and the speed."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from reelout.clock import FastClock, SystemClock, clock_for
from tests.support.live import StartLive


def test_a_fast_clock_runs_speed_times_faster_than_real_time() -> None:
    clock = FastClock(1000)
    wall, mono = clock.now(), clock.monotonic()
    time.sleep(0.05)  # at least 50 ms of real time: at least 50 s on the fast clock
    assert clock.now() - wall >= timedelta(seconds=50)
    assert clock.monotonic() - mono >= 50
    assert clock.now().tzinfo is not None


def test_speed_one_is_the_real_clock() -> None:
    assert isinstance(clock_for(1), SystemClock)
    assert isinstance(clock_for(60), FastClock)


def test_a_server_with_a_clock_speed_runs_its_clock_ahead(live_servers: StartLive) -> None:
    live = live_servers(clock_speed=3600)
    with live.client() as api:
        first = api.get("/healthz").json()
        time.sleep(0.05)
        second = api.get("/healthz").json()
    assert first["clock_speed"] == second["clock_speed"] == 3600
    gap = datetime.fromisoformat(second["time"]) - datetime.fromisoformat(first["time"])
    assert gap >= timedelta(seconds=180)  # 50 ms at 3600 times
    assert datetime.fromisoformat(first["time"]) >= datetime.now(UTC) - timedelta(minutes=1)
