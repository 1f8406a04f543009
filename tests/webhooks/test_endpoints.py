"""Webhook endpoints over the API: create (secret shown once), list, get, delete, rotate, limits."""

from __future__ import annotations

import pytest

from tests.support.live import LiveServer, StartLive
from tests.webhooks.conftest import subscribe


def test_create_shows_the_secret_once_and_lists_without_it(server: LiveServer) -> None:
    with server.client() as api:
        reply = api.post(
            "/api/v1/webhooks",
            json={"url": "https://example.com/hooks", "description": "orders app"},
        )
        assert reply.status_code == 201
        created = reply.json()
        assert created["id"].startswith("we_")
        assert created["secret"].startswith("whsec_") and len(created["secret"]) > 40
        assert created["events"] == ["*"]
        assert created["url"] == "https://example.com/hooks"
        assert created["created"]
        listed = api.get("/api/v1/webhooks").json()
        one = api.get(f"/api/v1/webhooks/{created['id']}").json()
    assert [e["id"] for e in listed] == [created["id"]]
    assert "secret" not in listed[0] and "secret" not in one
    assert one["description"] == "orders app"


def test_events_can_be_chosen_and_duplicates_are_dropped(server: LiveServer) -> None:
    with server.client() as api:
        created = subscribe(
            api, "https://example.com/h", ["video.error", "video.error", "video.ready"]
        )
    assert created["events"] == ["video.error", "video.ready"]


@pytest.mark.parametrize(
    "url", ["ftp://example.com/", "/relative/path", "https://", "example.com/hook", "not a url"]
)
def test_an_invalid_url_is_refused(server: LiveServer, url: str) -> None:
    with server.client() as api:
        reply = api.post("/api/v1/webhooks", json={"url": url})
        assert reply.status_code == 400
        assert reply.json()["code"] == "INVALID_WEBHOOK_URL"
        assert api.get("/api/v1/webhooks").json() == []


def test_unknown_events_are_refused_naming_the_known_ones(server: LiveServer) -> None:
    with server.client() as api:
        reply = api.post(
            "/api/v1/webhooks",
            json={"url": "https://example.com/", "events": ["video.ready", "video.deleted"]},
        )
        empty = api.post("/api/v1/webhooks", json={"url": "https://example.com/", "events": []})
    assert reply.status_code == 400
    error = reply.json()
    assert error["code"] == "UNKNOWN_EVENT"
    assert error["details"]["unknown"] == ["video.deleted"]
    assert {"video.ready", "video.error"} <= set(error["details"]["known"])
    assert "video.ready" in error["message"]
    assert empty.status_code == 400 and empty.json()["code"] == "NO_EVENTS"


def test_the_endpoint_limit_holds_and_frees_on_delete(start_live: StartLive) -> None:
    server = start_live(webhook_max_endpoints=2)
    with server.client() as api:
        first = subscribe(api, "https://example.com/1")
        subscribe(api, "https://example.com/2")
        over = api.post("/api/v1/webhooks", json={"url": "https://example.com/3"})
        assert over.status_code == 409
        assert over.json()["code"] == "WEBHOOK_LIMIT_REACHED"
        assert over.json()["details"] == {"max_endpoints": 2}
        assert "REELOUT_WEBHOOK_MAX_ENDPOINTS" in over.json()["message"]
        assert len(api.get("/api/v1/webhooks").json()) == 2
        assert api.delete(f"/api/v1/webhooks/{first['id']}").status_code == 204
        subscribe(api, "https://example.com/3")


def test_delete_then_the_endpoint_is_gone(server: LiveServer) -> None:
    with server.client() as api:
        created = subscribe(api, "https://example.com/hook")
        assert api.delete(f"/api/v1/webhooks/{created['id']}").status_code == 204
        assert api.get("/api/v1/webhooks").json() == []
        again = api.delete(f"/api/v1/webhooks/{created['id']}")
        missing = api.get(f"/api/v1/webhooks/{created['id']}")
    assert again.status_code == 404 and again.json()["code"] == "WEBHOOK_NOT_FOUND"
    assert missing.status_code == 404


def test_rotation_gives_a_new_secret(server: LiveServer) -> None:
    with server.client() as api:
        created = subscribe(api, "https://example.com/hook")
        rotated = api.post(f"/api/v1/webhooks/{created['id']}/rotate-secret")
        assert rotated.status_code == 200
        assert rotated.json()["secret"].startswith("whsec_")
        assert rotated.json()["secret"] != created["secret"]
        bad = api.post(
            f"/api/v1/webhooks/{created['id']}/rotate-secret",
            json={"expire_previous_in_seconds": 10**9},
        )
        assert bad.status_code == 422
        assert api.post("/api/v1/webhooks/we_nope/rotate-secret").status_code == 404


def test_webhooks_need_an_admin_key(server: LiveServer) -> None:
    with server.client(token=None) as anonymous:
        assert anonymous.get("/api/v1/webhooks").status_code == 401
        assert anonymous.get("/api/v1/webhooks/deliveries").status_code == 401
    with server.client() as api:
        key = api.post("/api/v1/keys", json={"scope": "client", "environment": "production"})
    with server.client(token=key.json()["key"]) as client_app:
        reply = client_app.post("/api/v1/webhooks", json={"url": "https://example.com/"})
    assert reply.status_code == 403
