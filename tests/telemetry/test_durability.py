"""An event answered as accepted is on disk: a `kill -9` of the server the next instant loses none."""

from __future__ import annotations

import threading
import uuid

import httpx
from sqlalchemy import select

from reelout.db.engine import Database
from reelout.telemetry.models import TelemetryEvent
from tests.support.live import ADMIN_TOKEN, ServerProcess, StartServer
from tests.telemetry.conftest import event

BATCH = 50


def _client_key(server: ServerProcess) -> str:
    reply = httpx.post(
        f"{server.url}/api/v1/keys",
        json={"scope": "client", "environment": "production", "name": "app"},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    assert reply.status_code == 201, reply.text
    key: str = reply.json()["key"]
    return key


def _send_until_refused(url: str, key: str, accepted: list[str], stop: threading.Event) -> None:
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}) as app:
        while not stop.is_set():
            batch = [event("heartbeat", watch_ms=10_000) for _ in range(BATCH)]
            try:
                reply = app.post("/api/v1/telemetry/events", json=batch, timeout=5)
            except httpx.TransportError:
                return  # the server is gone: this batch's answer never came
            assert reply.json()["accepted"] == BATCH
            accepted.extend(item["event_id"] for item in batch)


def test_accepted_events_survive_kill_9(start_server: StartServer) -> None:
    server = start_server()
    key = _client_key(server)
    accepted: list[str] = []
    stop = threading.Event()
    senders = [
        threading.Thread(target=_send_until_refused, args=(server.url, key, accepted, stop))
        for _ in range(4)
    ]
    for sender in senders:
        sender.start()
    while len(accepted) < 40 * BATCH:
        stop.wait(0.01)
    server.kill()  # SIGKILL mid-stream, answers in flight
    stop.set()
    for sender in senders:
        sender.join(timeout=30)
    db = Database(f"sqlite:///{server.data_dir / 'reelout.db'}")
    try:
        with db.read() as session:
            stored = {str(e) for e in session.scalars(select(TelemetryEvent.event_id))}
    finally:
        db.dispose()
    assert len(accepted) >= 40 * BATCH
    lost = set(accepted) - stored
    assert not lost, f"{len(lost)} accepted events were lost"
    assert all(uuid.UUID(i) for i in accepted)
