"""Fixtures for the webhook tests: a live Reelout on a manual clock, a receiver, a job runner."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from reelout.clock import ManualClock
from reelout.runtime import Runtime
from reelout.webhooks import service
from tests.support.live import LiveServer, StartLive
from tests.webhooks.receiver import Receiver

LOOPBACK = "127.0.0.0/8"  # REELOUT_WEBHOOK_ALLOW_NETWORKS for receivers on this machine


@pytest.fixture
def receiver(clock: ManualClock) -> Iterator[Receiver]:
    with Receiver(clock) as rec:
        yield rec


@pytest.fixture
def start_live(live_servers: StartLive, clock: ManualClock) -> StartLive:
    """`start_live(**settings)`: a live server on the test's ManualClock; stopped at the end.

    The receivers listen on 127.0.0.1, a loopback address webhooks may not reach by default:
    these servers allowlist 127.0.0.0/8 unless a test passes its own `webhook_allow_networks`."""
    return functools.partial(live_servers, clock=clock, webhook_allow_networks=LOOPBACK)


@pytest.fixture
def server(start_live: StartLive) -> LiveServer:
    return start_live()


def emit(rt: Runtime, event_type: str = "video.ready", **data: Any) -> str:
    """Emit an event the way another domain does: inside its own unit of work."""
    with rt.db.session() as session:
        return service.emit(session, rt.clock, event_type, data or {"uid": "v1"})


def subscribe(api: httpx.Client, url: str, events: list[str] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"url": url}
    if events is not None:
        body["events"] = events
    reply = api.post("/api/v1/webhooks", json=body)
    assert reply.status_code == 201, reply.text
    created: dict[str, Any] = reply.json()
    return created


def deliveries(api: httpx.Client, **query: str) -> list[dict[str, Any]]:
    reply = api.get("/api/v1/webhooks/deliveries", params=query)
    assert reply.status_code == 200, reply.text
    items: list[dict[str, Any]] = reply.json()["deliveries"]
    return items
