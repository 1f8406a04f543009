"""The rollouts tests' flag set and plan, and a live server with them (its change feed polled
every 50 ms, so connected apps hear a change at once)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from reelout.clock import ManualClock
from tests.support.live import LiveServer, StartLive

API = "/api/v1/rollouts"
ENV = "production"
FLAG = "use_tus_upload"
FLAGS: dict[str, Any] = {
    "flags": {
        FLAG: {"state": "ENABLED", "variants": {"on": True, "off": False}, "defaultVariant": "off"},
        "other": {"state": "ENABLED", "variants": {"a": 1, "b": 2}, "defaultVariant": "a"},
    }
}
PLAN: dict[str, Any] = {
    "rollout": {
        "flag": FLAG,
        "environment": ENV,
        "treatment": "on",
        "control": {"variation": "off", "allocation": "matched"},
        "stages": [
            {"percent": 10, "min_duration": "2h"},
            {"percent": 25, "min_duration": "4h"},
            {"percent": 50, "min_duration": "1d"},
            {"percent": 100, "min_duration": "1d", "monitor_only": True},
        ],
        "guardrails": [
            {"metric": "error_rate", "role": "guardrail", "vs_control": {"margin_abs": 0.0}},
            {"metric": "crash_rate", "role": "critical", "vs_control": {"margin_abs": 0.0}},
        ],
    }
}


@pytest.fixture
def server(live_servers: StartLive) -> LiveServer:
    live = live_servers(flag_change_poll_seconds=0.05, seed_flags=False)
    with live.client() as admin:
        reply = admin.put("/api/v1/environments/production/flagset", json=FLAGS)
        assert reply.status_code in (200, 201), reply.text
    return live


def check(reply: httpx.Response, status: int = 200) -> Any:
    """The reply's JSON, once its status is `status` (else the body says why)."""
    assert reply.status_code == status, reply.text
    return reply.json()


def on_manual_clock(live_servers: StartLive, clock: ManualClock) -> LiveServer:
    """A server on the test's clock whose rollups read every event at once, with the flags."""
    live = live_servers(clock=clock, seed_flags=False, telemetry_rollup_delay_seconds=0)
    with live.client() as admin:
        check(admin.put(f"/api/v1/environments/{ENV}/flagset", json=FLAGS))
    return live


@pytest.fixture
def api(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client
