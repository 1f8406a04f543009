"""Webhooks do not reach inside (issue 9 §4): internal addresses are refused when an endpoint is
made and again at every connect, nothing connects to them, and the log keeps no answer's body."""

from __future__ import annotations

import json
from typing import Any

import pytest

from reelout.clock import ManualClock
from tests.support.jobs import run_jobs
from tests.support.live import LiveServer, StartLive
from tests.webhooks.conftest import deliveries, emit, subscribe
from tests.webhooks.receiver import Receiver, Reply

HOUR = 3600
ADMIN_PAGE = b"<h1>internal admin</h1> db password: hunter2"
NOT_ALLOWED = "WEBHOOK_ADDRESS_NOT_ALLOWED"


@pytest.fixture
def internal_service(receiver: Receiver) -> Receiver:
    """A service on this machine that must stay out of reach: it answers with its admin page."""
    receiver.default = Reply(
        200, headers={"Content-Type": "text/html; charset=utf-8"}, body=ADMIN_PAGE
    )
    return receiver


@pytest.fixture
def default_server(start_live: StartLive) -> LiveServer:
    """A server on default settings: no network allowlisted."""
    return start_live(webhook_allow_networks=[])


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/internal-admin",
        "http://[::1]/hook",
        "http://localhost:9000/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.5/hook",
        "https://192.168.1.1/hook",
        "http://100.64.0.1/hook",
        "http://0.0.0.0:8000/hook",
        "http://[fe80::1]/hook",
        "http://[fd00::1]/hook",
        "http://224.0.0.1/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://2130706433/hook",
        "http://0x7f.1/hook",
        "http://hooks.example.com@127.0.0.1/hook",
    ],
)
def test_an_endpoint_at_an_internal_address_is_refused(
    default_server: LiveServer, url: str
) -> None:
    with default_server.client() as api:
        reply = api.post("/api/v1/webhooks", json={"url": url})
        assert api.get("/api/v1/webhooks").json() == []
    assert reply.status_code == 400
    error = reply.json()
    assert error["code"] == NOT_ALLOWED
    assert "REELOUT_WEBHOOK_ALLOW_NETWORKS" in error["message"]
    assert set(error["details"]) == {"address", "reason"}


def test_an_allowlisted_network_may_be_subscribed_and_no_other(start_live: StartLive) -> None:
    server = start_live(webhook_allow_networks="10.20.0.0/16, fd00:1::/64")
    with server.client() as api:
        inside = api.post("/api/v1/webhooks", json={"url": "http://10.20.3.4/hook"})
        inside_v6 = api.post("/api/v1/webhooks", json={"url": "http://[fd00:1::9]/hook"})
        other = api.post("/api/v1/webhooks", json={"url": "http://10.21.0.1/hook"})
        public = api.post("/api/v1/webhooks", json={"url": "https://hooks.example.com/"})
    assert inside.status_code == inside_v6.status_code == public.status_code == 201
    assert other.status_code == 400 and other.json()["code"] == NOT_ALLOWED


def subscribe_then_lose_the_allowlist(
    start_live: StartLive, url: str, allow: str = "127.0.0.0/8", **settings: object
) -> LiveServer:
    """An endpoint made while `allow` was set (or before this check existed), then the server
    restarted on default settings: only the check at connect time stands in the way."""
    first = start_live(webhook_allow_networks=allow, **settings)
    with first.client() as api:
        subscribe(api, url)
    first.stop()
    return start_live(webhook_allow_networks=[], **settings)


def delivery_detail(server: LiveServer) -> dict[str, Any]:
    with server.client() as api:
        [item] = deliveries(api)
        detail: dict[str, Any] = api.get(f"/api/v1/webhooks/deliveries/{item['id']}").json()
    return detail


def test_a_delivery_to_an_internal_address_is_refused_and_never_connects(
    start_live: StartLive, internal_service: Receiver, clock: ManualClock, database_url: str
) -> None:
    url = internal_service.url("/internal-admin")
    server = subscribe_then_lose_the_allowlist(start_live, url, database_url=database_url)
    emit(server.runtime)
    run_jobs(server.runtime)
    clock.advance(HOUR)
    run_jobs(server.runtime)
    detail = delivery_detail(server)
    assert internal_service.connections == 0 and internal_service.requests == []
    assert detail["state"] == "failed" and detail["attempts"] == 1, "not retried"
    assert detail["last_error_code"] == NOT_ALLOWED
    assert "127.0.0.1 is not allowed: loopback" in detail["last_error"]
    assert detail["failure_reason"].startswith(NOT_ALLOWED)
    assert "REELOUT_WEBHOOK_ALLOW_NETWORKS" in detail["failure_reason"]
    [attempt] = detail["attempt_log"]
    assert attempt["error_code"] == NOT_ALLOWED and attempt["status_code"] is None


def test_a_host_name_that_resolves_to_loopback_is_refused_at_connect_time(
    start_live: StartLive, internal_service: Receiver
) -> None:
    url = internal_service.url("/internal-admin", host="localhost")
    server = subscribe_then_lose_the_allowlist(start_live, url, allow="127.0.0.0/8,::1/128")
    emit(server.runtime)
    run_jobs(server.runtime)
    detail = delivery_detail(server)
    assert internal_service.connections == 0
    assert detail["state"] == "failed" and detail["last_error_code"] == NOT_ALLOWED
    assert "(of localhost) is not allowed: loopback" in detail["last_error"]


def test_a_refused_delivery_can_be_resent_once_the_network_is_allowlisted(
    start_live: StartLive, receiver: Receiver
) -> None:
    server = subscribe_then_lose_the_allowlist(start_live, receiver.url())
    emit(server.runtime)
    run_jobs(server.runtime)
    server.stop()
    allowed = start_live()  # the operator allowlists 127.0.0.0/8
    with allowed.client() as api:
        [refused] = deliveries(api)
        assert api.post(f"/api/v1/webhooks/deliveries/{refused['id']}/resend").status_code == 202
        run_jobs(allowed.runtime)
        [after] = deliveries(api)
    assert refused["state"] == "failed"
    assert after["state"] == "delivered" and after["last_error_code"] is None
    assert len(receiver.requests) == 1


def test_the_log_keeps_a_summary_of_the_answer_not_its_body(
    server: LiveServer, internal_service: Receiver
) -> None:
    with server.client() as api:
        subscribe(api, internal_service.url("/internal-admin"))
    emit(server.runtime)
    run_jobs(server.runtime)
    detail = delivery_detail(server)
    [attempt] = detail["attempt_log"]
    assert detail["state"] == "delivered"
    assert attempt["response_content_type"] == "text/html"
    assert attempt["response_bytes"] == len(ADMIN_PAGE)
    assert attempt["response_excerpt"] is None
    assert "hunter2" not in json.dumps(detail)


def test_an_answer_without_a_length_is_counted_and_its_odd_media_type_dropped(
    server: LiveServer, receiver: Receiver
) -> None:
    odd_type = {"Content-Type": "x<script>/y; q=leak"}
    receiver.script(Reply(599, headers=odd_type, body=b"no!", content_length=False))
    with server.client() as api:
        subscribe(api, receiver.url())
    emit(server.runtime)
    run_jobs(server.runtime)
    [attempt] = delivery_detail(server)["attempt_log"]
    assert attempt["response_content_type"] is None
    assert attempt["response_bytes"] == 3
    assert attempt["error_code"] == "WEBHOOK_HTTP_STATUS" and attempt["status_code"] == 599
    assert attempt["error"] == "HTTP 599"


def test_an_operator_may_keep_a_short_excerpt_for_receivers_they_trust(
    start_live: StartLive, internal_service: Receiver
) -> None:
    server = start_live(webhook_response_excerpt_bytes=12)
    with server.client() as api:
        subscribe(api, internal_service.url())
    emit(server.runtime)
    run_jobs(server.runtime)
    [attempt] = delivery_detail(server)["attempt_log"]
    assert attempt["response_excerpt"] == ADMIN_PAGE[:12].decode()
    assert attempt["response_bytes"] == len(ADMIN_PAGE)


@pytest.mark.parametrize("value", [-1, 4097])
def test_the_excerpt_setting_is_bounded(start_live: StartLive, value: int) -> None:
    with pytest.raises(ValueError, match="webhook_response_excerpt_bytes"):
        start_live(webhook_response_excerpt_bytes=value)


def test_the_allowlist_must_be_networks(start_live: StartLive) -> None:
    with pytest.raises(ValueError, match="webhook_allow_networks"):
        start_live(webhook_allow_networks="10.0.0.1/8")
    with pytest.raises(ValueError, match="webhook_allow_networks"):
        start_live(webhook_allow_networks="intranet")
