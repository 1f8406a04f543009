"""End to end on an injected clock: one variant's uploads fail, the seed's upload-failure alert
fires only after its 30 minutes, and real HTTP receivers get a signed JSON payload and a Slack
message; the daily digest arrives at 09:00; the alert resolves when the failures stop."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from reelout.clock import ManualClock
from reelout.webhooks.signing import verify
from tests.alerts.conftest import SeriesSource
from tests.support.jobs import run_jobs
from tests.support.live import LiveServer
from tests.webhooks.receiver import Receiver

UPLOADS = ("upload_failure_rate", "upload_success_rate")
WHERE = {"environment": "production", "flag": "new-uploader"}
START = datetime(2026, 1, 1, tzinfo=UTC)  # the ManualClock's start


def add_receiver(api: Any, receiver_id: str, kind: str, url: str) -> dict[str, Any]:
    reply = api.post("/api/v1/alerts/receivers", json={"id": receiver_id, "kind": kind, "url": url})
    assert reply.status_code == 201, reply.text
    created: dict[str, Any] = reply.json()
    return created


def minute(server: LiveServer, clock: ManualClock, signals: SeriesSource, on_bad: float) -> None:
    """One minute of traffic (100 uploads per arm, `on_bad` of the `on` arm's failing), then
    the clock moves on and every due job runs, the evaluation tick among them."""
    clock.advance(60)
    now = clock.now()
    signals.add_rate(UPLOADS, now, on_bad * 100, 100, **WHERE, variant="on")
    signals.add_rate(UPLOADS, now, 1, 100, **WHERE, variant="off")
    run_jobs(server.runtime, tick=True)


def test_a_failing_variant_fires_after_its_hold_time_and_receivers_get_it(
    server: LiveServer, clock: ManualClock, signals: SeriesSource, receiver: Receiver
) -> None:
    with server.client() as api:
        hook = add_receiver(api, "on-call", "webhook", receiver.url("/hook"))
        add_receiver(api, "team-slack", "slack", receiver.url("/slack"))
        run_jobs(server.runtime, tick=True)  # the first tick: no data yet
        first_breach = clock.now() + timedelta(minutes=1)
        pending_seen = False
        while not receiver.requests and clock.now() < START + timedelta(hours=2):
            minute(server, clock, signals, on_bad=0.06)
            states = {
                a["labels"]["variant"]: a["state"]
                for a in api.get("/api/v1/alerts").json()["alerts"]
            }
            pending_seen = pending_seen or states.get("on") == "pending"
        fired_at = clock.now()
        alerts = api.get("/api/v1/alerts", params={"state": "firing"}).json()["alerts"]
    assert pending_seen, "the alert waited in pending"
    assert fired_at - first_breach >= timedelta(minutes=30), "not before its hold time"
    assert fired_at - first_breach <= timedelta(minutes=32), "one group_wait after it"
    [firing] = alerts
    assert firing["rule"] == "upload-failure-sustained" and firing["labels"]["variant"] == "on"

    by_path = {r.path: r for r in receiver.requests}
    assert set(by_path) == {"/hook", "/slack"}
    signed = by_path["/hook"]
    assert verify(hook["secret"], signed.signature, signed.body, now=signed.at)
    assert not verify(hook["secret"], signed.signature, signed.body + b" ", now=signed.at)
    assert signed.headers["reelout-event-type"] == "alert.notification"
    body = json.loads(signed.body)
    assert body["type"] == "alert.notification" and body["id"] == signed.event_id
    data = body["data"]
    assert data["status"] == "firing" and data["receiver"] == "on-call"
    [alert] = data["alerts"]
    assert alert["labels"] == {**WHERE, "variant": "on", "alertname": "upload-failure-sustained",
                               "severity": "warning"}  # fmt: skip
    assert alert["value"] == 0.06
    assert "upload_failure_rate is 6% (> 3%)" in alert["annotations"]["summary"]
    assert "new-uploader" in alert["annotations"]["runbook"]
    slack = json.loads(by_path["/slack"].body)
    assert slack["text"].startswith(":rotating_light: [FIRING:1] upload-failure-sustained")
    assert slack["blocks"][0]["type"] == "header"
    assert "reelout-signature" not in by_path["/slack"].headers


def test_the_alert_resolves_and_receivers_are_told(
    server: LiveServer, clock: ManualClock, signals: SeriesSource, receiver: Receiver
) -> None:
    with server.client() as api:
        add_receiver(api, "on-call", "webhook", receiver.url("/hook"))
        api.put("/api/v1/alerts/routing", json={"group_wait": "0s", "group_interval": "1m"})
        for _ in range(35):
            minute(server, clock, signals, on_bad=0.06)
        assert [json.loads(r.body)["data"]["status"] for r in receiver.requests] == ["firing"]
        for _ in range(60):  # the 30 m window forgets the failures, then keep_firing_for holds
            minute(server, clock, signals, on_bad=0.0)
        history = api.get("/api/v1/alerts/history", params={"rule": "upload-failure-sustained"})
    statuses = [json.loads(r.body)["data"]["status"] for r in receiver.requests]
    assert statuses == ["firing", "resolved"]
    states = [t["to_state"] for t in reversed(history.json()["transitions"])]
    assert states == ["pending", "firing", "recovering", "resolved", "inactive"]


def test_the_daily_digest_arrives_at_nine(
    server: LiveServer, clock: ManualClock, signals: SeriesSource, receiver: Receiver
) -> None:
    with server.client() as api:
        add_receiver(api, "on-call", "webhook", receiver.url("/hook"))
    for hour in range(24):
        at = START - timedelta(hours=hour)
        signals.add_rate(UPLOADS, at, 1, 100, **WHERE, variant="on")
        signals.add_rate(UPLOADS, at, 3, 100, **WHERE, variant="off")
    clock.set(datetime(2026, 1, 1, 8, 59, tzinfo=UTC))
    run_jobs(server.runtime, tick=True)
    assert receiver.requests == []
    clock.set(datetime(2026, 1, 1, 9, 0, tzinfo=UTC))
    run_jobs(server.runtime, tick=True)
    [got] = receiver.requests
    assert got.at == int(datetime(2026, 1, 1, 9, 0, tzinfo=UTC).timestamp())
    body = json.loads(got.body)
    assert body["type"] == "alert.digest"
    report = body["data"]["report"]
    assert report["rule"] == "upload-success-daily" and report["at"] == "2026-01-01T09:00:00Z"
    assert report["status"] == "not_met"  # the off arm succeeds 97% of the time
    rows = {row["labels"]["variant"]: row for row in report["rows"]}
    assert rows["on"]["met"] is True and rows["off"]["met"] is False
    assert rows["on"]["values"]["upload_success_rate"]["value"] == 0.99
    assert "upload_failure_rate" in rows["on"]["values"]
    clock.set(datetime(2026, 1, 1, 9, 5, tzinfo=UTC))
    run_jobs(server.runtime, tick=True)
    assert len(receiver.requests) == 1, "once a day"
