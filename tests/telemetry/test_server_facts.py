"""The server's own facts become telemetry with no client reporting: uploads finishing at its
endpoints (per method), processing failing with its code, and the exposures OFREP served."""

from __future__ import annotations

import base64
from collections import Counter
from typing import Any

import orjson
from sqlalchemy import select

from reelout.telemetry.models import TelemetryEvent
from tests.support.jobs import run_jobs
from tests.support.live import LiveServer, StartLive
from tests.telemetry.conftest import client_key

FLAGS = {
    "flags": {
        "new-uploader": {
            "state": "ENABLED",
            "variants": {"on": True, "off": False},
            "defaultVariant": "off",
            "targeting": {"fractional": [["on", 50], ["off", 50]]},
        }
    }
}


def stored(live: LiveServer) -> list[dict[str, Any]]:
    with live.runtime.db.read() as session:
        rows = session.execute(select(TelemetryEvent.source, TelemetryEvent.body)).all()
    return [{**orjson.loads(body), "_source": source} for source, body in rows]


def test_uploads_and_processing_are_recorded_per_method(live_servers: StartLive) -> None:
    live = live_servers(telemetry_rollup_delay_seconds=0)
    with live.client() as api:
        url = "/api/v1/orders/A-1/inbound/videos"
        direct = api.post(url, content=b"not a video", headers={"Content-Type": "video/mp4"})
        legacy = api.post(url, json={"file_base64": base64.b64encode(b"nor this").decode()})
    assert direct.status_code == legacy.status_code == 201
    run_jobs(live.runtime)  # processing fails: neither is a video
    run_jobs(live.runtime, tick=True)  # the telemetry job records what happened
    run_jobs(live.runtime, tick=True)  # and again: nothing is recorded twice
    events = [e for e in stored(live) if e["_source"] == "server"]
    kinds = Counter((e["type"], e.get("method")) for e in events)
    assert kinds == {
        ("upload_completed", "direct"): 1,
        ("upload_completed", "base64"): 1,
        ("processing_failed", None): 2,
    }
    assert all(e["error_code"] for e in events if e["type"] == "processing_failed")
    with live.client() as admin:
        reply = admin.get(
            "/api/v1/kpis",
            params={
                "environment": "production",
                "metric": ["server_upload_success_rate", "processing_success_rate"],
            },
        )
    assert reply.status_code == 200, reply.text
    rows = reply.json()["kpis"]
    values = {row["metric"]: row["control"]["value"] for row in rows}
    assert values == {"server_upload_success_rate": 1.0, "processing_success_rate": 0.0}


def test_a_client_cannot_pass_for_the_server(live_servers: StartLive) -> None:
    live = live_servers()
    key = client_key(live)
    forged = {
        "event_id": "0b7e2f5c-9d0b-4a57-8a43-1f0c5e1d2a3b",
        "type": "upload_completed",
        "viewer_id": "v",
        "client_time": "2026-12-02T10:00:00Z",
        "bytes": 1,
        "duration_ms": 1,
        "method": "tus",
        "source": "server",
    }
    with live.client(token=key) as app:
        assert app.post("/api/v1/telemetry/events", json=[forged]).json()["accepted"] == 1
    [event] = stored(live)
    assert event["_source"] == "client" and "source" not in event


def test_ofrep_exposures_are_exposure_events(live_servers: StartLive) -> None:
    live = live_servers(exposure_flush_seconds=3600)
    key = client_key(live)
    with live.client() as admin:
        assert admin.put("/api/v1/environments/production/flagset", json=FLAGS).status_code in (
            200,
            201,
        )
    with live.client(token=key) as app:
        for user in ("u1", "u2", "u3"):
            reply = app.post("/ofrep/v1/evaluate/flags", json={"context": {"targetingKey": user}})
            assert reply.status_code == 200
    live.app.state.exposures.flush()
    live.app.state.exposures.flush()
    exposures = [e for e in stored(live) if e["type"] == "exposure"]
    assert sorted(e["viewer_id"] for e in exposures) == ["u1", "u2", "u3"]
    assert all(e["flags"] == {"new-uploader": e["variant"]} for e in exposures)


def test_an_upload_naming_its_uploader_counts_in_the_arm_ofrep_served_them(
    live_servers: StartLive,
) -> None:
    """`viewer_id` in an upload's metadata: the server's facts about it carry the variants
    that viewer was served, so the server's upload success rate compares arms."""
    live = live_servers(exposure_flush_seconds=3600, telemetry_rollup_delay_seconds=0)
    key = client_key(live)
    with live.client() as admin:
        admin.put("/api/v1/environments/production/flagset", json=FLAGS).raise_for_status()
    with live.client(token=key) as app:
        served = app.post("/ofrep/v1/evaluate/flags", json={"context": {"targetingKey": "u7"}})
    variant = next(f["variant"] for f in served.json()["flags"] if f["key"] == "new-uploader")
    live.app.state.exposures.flush()
    with live.client() as api:
        url = "/api/v1/orders/A-2/inbound/videos"
        named = {"file_base64": base64.b64encode(b"not a video").decode(), "viewer_id": "u7"}
        assert api.post(url, json=named).status_code == 201
        anonymous = {"file_base64": base64.b64encode(b"nor this").decode()}
        assert api.post(url, json=anonymous).status_code == 201
        unusable = {"file_base64": base64.b64encode(b"nor that").decode(), "viewer_id": "x" * 300}
        assert api.post(url, json=unusable).status_code == 201  # counted for everyone only
    run_jobs(live.runtime, tick=True)
    uploads = [e for e in stored(live) if e["type"] == "upload_completed"]
    by_viewer = {e["viewer_id"].split(":")[0]: e["flags"] for e in uploads}
    assert by_viewer == {"u7": {"new-uploader": variant}, "video": {}}
    with live.client() as admin:
        reply = admin.get(
            "/api/v1/kpis",
            params={
                "environment": "production",
                "flag": "new-uploader",
                "metric": ["server_upload_success_rate"],
            },
        )
    assert reply.status_code == 200, reply.text
    [row] = reply.json()["kpis"]
    arms = [arm for arm in (row["control"], row["treatment"]) if arm]
    assert [(arm["variant"], arm["n"]) for arm in arms] == [(variant, 1)], row
