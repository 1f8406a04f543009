"""The SDK's delivery (/sdk/telemetry.js: JavaScript, ETag and 304, CORS for any origin whatever
REELOUT_CORS_ORIGINS says) and the console's own ingest path (session and CSRF instead of a
key; REELOUT_CONSOLE_TELEMETRY on and off), over HTTP."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from reelout.web.sdk import MAX_AGE_SECONDS, SDK_DIR
from tests.support.live import LiveServer, StartLive, live_server_fixture
from tests.support.telemetry import stored_events
from tests.web.test_login import login

SDK = "/sdk/telemetry.js"
CONSOLE_EVENTS = "/console/api/telemetry"
APP = "https://app.example"

# the API answers CORS for APP only: the SDK must still be importable from anywhere
server = live_server_fixture(scope="module", folder="sdk", cors_origins=[APP])


@pytest.fixture
def web(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10, follow_redirects=False) as client:
        yield client


def test_the_sdk_is_javascript_any_origin_may_import(web: httpx.Client) -> None:
    reply = web.get(SDK, headers={"Origin": "https://elsewhere.example"})
    assert reply.status_code == 200
    assert reply.content == (SDK_DIR / "telemetry.js").read_bytes()
    assert reply.headers["content-type"] == "text/javascript; charset=utf-8"
    assert reply.headers["access-control-allow-origin"] == "*"
    assert reply.headers["cache-control"] == f"public, max-age={MAX_AGE_SECONDS}"
    assert reply.headers["x-content-type-options"] == "nosniff"
    assert re.fullmatch(r'"[0-9a-f]{32}"', reply.headers["etag"])
    assert "export function createTelemetry" in reply.text
    # the API itself keeps REELOUT_CORS_ORIGINS
    api = web.get("/api/v1/telemetry/schema", headers={"Origin": "https://elsewhere.example"})
    assert "access-control-allow-origin" not in api.headers


def test_the_sdk_is_revalidated_by_its_etag(web: httpx.Client) -> None:
    etag = web.get(SDK).headers["etag"]
    for sent in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        unchanged = web.get(SDK, headers={"If-None-Match": sent})
        assert unchanged.status_code == 304, sent
        assert unchanged.content == b"" and unchanged.headers["etag"] == etag
    assert web.get(SDK, headers={"If-None-Match": '"other"'}).status_code == 200


def test_a_head_of_the_sdk_gives_its_length_and_no_body(web: httpx.Client) -> None:
    reply = web.head(SDK)
    assert reply.status_code == 200 and reply.content == b""
    assert int(reply.headers["content-length"]) == (SDK_DIR / "telemetry.js").stat().st_size


def event(type_: str, **fields: Any) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "type": type_,
        "viewer_id": "admin-key",
        "client_time": "2026-12-02T10:00:00Z",
        **fields,
    }


def test_the_console_reports_with_its_session_into_its_flags_environment(
    web: httpx.Client, server: LiveServer
) -> None:
    cookie, csrf = login(web)
    page = web.get("/console", headers=cookie).text
    config = json.loads(re.findall(r'id="telemetry-config">(.*?)</script>', page)[0])
    with server.client() as api:
        admin = next(k for k in api.get("/api/v1/keys").json() if k["scope"] == "admin")
    assert config == {
        "eventsPath": CONSOLE_EVENTS,
        "viewerId": admin["id"],  # the targeting key of the console's flags
        "platform": "web",
        "appVersion": config["appVersion"],
    }
    assert '<script type="module" src="/console/static/reporting.js' in page
    assert "rlo_client_" not in page  # no key in the page

    sent = [event("rating", score=4), event("rating", score=9)]
    reply = web.post(CONSOLE_EVENTS, json=sent, headers=cookie | {"X-CSRF-Token": csrf})
    assert reply.status_code == 200, reply.text
    assert reply.json()["accepted"] == 1
    assert [r["index"] for r in reply.json()["rejected"]] == [1]
    (stored,) = stored_events(server, event_id=sent[0]["event_id"])
    assert (stored["environment"], stored["source"]) == ("development", "client")


def test_the_console_path_takes_the_session_and_its_csrf_header(
    web: httpx.Client, server: LiveServer
) -> None:
    batch = [event("rating", score=3)]
    no_session = web.post(CONSOLE_EVENTS, json=batch)
    assert (no_session.status_code, no_session.json()["code"]) == (401, "SESSION_REQUIRED")
    cookie, csrf = login(web)
    no_csrf = web.post(CONSOLE_EVENTS, json=batch, headers=cookie)
    assert (no_csrf.status_code, no_csrf.json()["code"]) == (403, "CSRF_TOKEN_MISSING")
    wrong = web.post(CONSOLE_EVENTS, json=batch, headers=cookie | {"X-CSRF-Token": csrf[::-1]})
    assert (wrong.status_code, wrong.json()["code"]) == (403, "CSRF_TOKEN_INVALID")
    not_json = web.post(
        CONSOLE_EVENTS,
        content=b"{oops",
        headers=cookie | {"X-CSRF-Token": csrf, "Content-Type": "application/json"},
    )
    assert (not_json.status_code, not_json.json()["code"]) == (400, "INVALID_JSON")
    assert stored_events(server, event_id=batch[0]["event_id"]) == []


def test_with_console_telemetry_off_the_pages_report_nothing(live_servers: StartLive) -> None:
    off = live_servers("off", console_telemetry=False)
    with httpx.Client(base_url=off.url, timeout=10, follow_redirects=False) as web:
        cookie, csrf = login(web)
        page = web.get("/console", headers=cookie).text
        assert "telemetry-config" not in page and "reporting.js" not in page
        refused = web.post(
            CONSOLE_EVENTS, json=[event("pause")], headers=cookie | {"X-CSRF-Token": csrf}
        )
    assert (refused.status_code, refused.json()["code"]) == (404, "CONSOLE_TELEMETRY_OFF")
    assert stored_events(off) == []
