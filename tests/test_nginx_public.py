"""The nginx example's per-location body limits and request limits, in front of a real server."""

from __future__ import annotations

import json
import uuid

import httpx

from tests.support.live import LiveServer
from tests.support.waiting import wait_until
from tests.uploads.test_nginx import proxied

__all__ = ["proxied"]
KiB = 1024


def test_the_example_caps_bodies_per_location(proxied: tuple[LiveServer, str]) -> None:
    server, proxy_url = proxied
    with server.client() as admin:
        body = {"scope": "client", "environment": "production", "name": "app"}
        key = admin.post("/api/v1/keys", json=body).json()["key"]
    with httpx.Client(base_url=proxy_url, headers={"Authorization": f"Bearer {key}"}) as app:
        small = app.post("/ofrep/v1/evaluate/flags", json={"context": {"targetingKey": "u"}})
        assert small.status_code == 200, small.text
        big = {"context": {"targetingKey": "u", "pad": "x" * 100 * KiB}}
        refused = app.post("/ofrep/v1/evaluate/flags", content=json.dumps(big))
        assert refused.status_code == 413
        assert refused.headers["server"].startswith("nginx"), "refused before Reelout"
        batch = {"exposures": [{"flag": "f", "variant": "v", "targetingKey": "u" * 200}] * 400}
        assert len(json.dumps(batch)) > 64 * KiB
        assert app.post("/api/v1/exposures", json=batch).status_code == 202, "exposures: 1 MiB"
    with server.client() as admin, httpx.Client(base_url=proxy_url, headers=admin.headers) as via:
        flags = {
            "flags": {
                f"flag_{n}": {
                    "state": "ENABLED",
                    "variants": {"on": "v" * 100},
                    "defaultVariant": "on",
                }
                for n in range(1000)
            }
        }
        assert len(json.dumps(flags)) > 64 * KiB
        put = via.put("/api/v1/environments/production/flagset", json=flags)
        assert put.status_code in (200, 201), "flag sets: REELOUT_FLAG_SET_MAX_BYTES"
        over = via.post("/api/v1/keys", json={"scope": "client", "name": "n" * 100 * KiB})
        assert over.status_code == 413 and over.headers["server"].startswith("nginx")


def test_the_example_limits_login_attempts_per_address_first(
    proxied: tuple[LiveServer, str],
) -> None:
    _, proxy_url = proxied
    answers = [
        httpx.post(f"{proxy_url}/console/login", data={"key": "rlo_admin_wrong"}) for _ in range(13)
    ]
    assert [a.status_code for a in answers[:10]] == [401] * 10
    assert all(a.status_code == 429 for a in answers[10:])
    assert "Too many login attempts" in answers[10].text, "Reelout's own limit (10 a minute)"
    assert "<center>nginx" in answers[-1].text, "nginx's limit_req, in front"


def test_the_access_log_names_paths_without_their_tokens(proxied: tuple[LiveServer, str]) -> None:
    server, proxy_url = proxied
    secret = "tok-" + "9f86d081884c7d659a2f"
    httpx.get(f"{proxy_url}/media/v/none/master.m3u8?token={secret}&x=1")
    log = server.runtime.settings.data_dir.parent / "nginx" / "logs" / "reelout.access.log"
    wait_until(
        lambda: log.exists() and "/media/v/none/master.m3u8" in log.read_text(),
        5,
        "nginx to write the access log line",
    )
    assert secret not in log.read_text()


def test_the_example_takes_a_whole_telemetry_batch_and_keeps_metrics_inside(
    proxied: tuple[LiveServer, str],
) -> None:
    """A batch of 1,000 events (far over the 64 KiB default) reaches the ingest; /metrics is
    not served to the public side (Prometheus scrapes the processes themselves)."""
    server, proxy_url = proxied
    with server.client() as admin:
        body = {"scope": "client", "environment": "production", "name": "app"}
        key = admin.post("/api/v1/keys", json=body).json()["key"]
        assert admin.get("/metrics").status_code == 200, "served on the process's own port"
    batch = [
        {
            "event_id": str(uuid.uuid4()),
            "type": "heartbeat",
            "viewer_id": f"viewer-{n}",
            "client_time": "2026-12-02T10:00:00Z",
            "watch_ms": n,
        }
        for n in range(1000)
    ]
    assert len(json.dumps(batch)) > 64 * KiB
    with httpx.Client(base_url=proxy_url, headers={"Authorization": f"Bearer {key}"}) as app:
        reply = app.post("/api/v1/telemetry/events", json=batch)
        assert reply.status_code == 200, reply.text
        assert reply.json()["accepted"] == 1000
        hidden = app.get("/metrics")
    assert hidden.status_code == 404 and hidden.headers["server"].startswith("nginx")
