"""A live server with a client key for telemetry, and events as apps send them."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from reelout.clock import Clock
from reelout.telemetry import service
from tests.support.live import LiveServer, StartLive

CLIENT_TIME = "2026-12-02T10:00:00Z"


def event(type_: str, **fields: Any) -> dict[str, Any]:
    """One event of `type_` with fresh ids; `fields` add or replace."""
    return {
        "event_id": str(uuid.uuid4()),
        "type": type_,
        "viewer_id": "viewer-1",
        "client_time": CLIENT_TIME,
        **fields,
    }


def upload_completed(**fields: Any) -> dict[str, Any]:
    return event(
        "upload_completed",
        **{"bytes": 1000, "duration_ms": 1200, "method": "tus", **fields},
    )


@dataclass
class Telemetry:
    """A live server and an app's client key for its production environment."""

    live: LiveServer
    key: str

    def app(self, **kwargs: Any) -> httpx.Client:
        return self.live.client(token=self.key, **kwargs)

    def send(self, events: Any, **kwargs: Any) -> httpx.Response:
        with self.app() as app:
            return app.post("/api/v1/telemetry/events", json=events, **kwargs)

    def stored(self) -> int:
        return service.count(self.live.runtime)


StartTelemetry = Callable[..., Telemetry]


def client_key(live: LiveServer, environment: str = "production") -> str:
    with live.client() as admin:
        reply = admin.post(
            "/api/v1/keys", json={"scope": "client", "environment": environment, "name": "app"}
        )
        assert reply.status_code == 201, reply.text
        key: str = reply.json()["key"]
    return key


@pytest.fixture
def start_telemetry(live_servers: StartLive) -> StartTelemetry:
    def start(**overrides: Any) -> Telemetry:
        live = live_servers(f"t{uuid.uuid4().hex[:6]}", **overrides)
        return Telemetry(live, client_key(live))

    return start


@pytest.fixture
def telemetry(start_telemetry: StartTelemetry) -> Telemetry:
    return start_telemetry()


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


def upload_outcome(
    clock: Clock, variant: str, ok: bool, seconds: float = 60.0, flag: str = "new-uploader"
) -> dict[str, Any]:
    """A new uploader's 50 MB upload attempt, completed in `seconds` or failed, now on `clock`,
    served `variant` of `flag`."""
    fields: dict[str, Any] = (
        {"type": "upload_completed", "bytes": 50_000_000, "duration_ms": int(seconds * 1000),
         "method": "tus"}
        if ok
        else {"type": "upload_failed", "error_class": "network", "retryable": True}
    )  # fmt: skip
    return {
        "event_id": str(uuid.uuid4()),
        "viewer_id": f"viewer-{uuid.uuid4().hex[:8]}",
        "upload_id": uuid.uuid4().hex,
        "client_time": clock.now().isoformat(),
        "flags": {flag: variant},
        **fields,
    }
