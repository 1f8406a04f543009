"""`reelout webhooks` on a real database (SQLite and PostgreSQL): endpoints and the delivery log
as the API shows them, deliveries that really arrive, every change audited as the OS user."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from reelout.clock import SystemClock
from reelout.webhooks import service
from tests.support.cli import CLI_USER, Cli, as_json, cli_for, ok, refused
from tests.support.jobs import run_jobs
from tests.support.live import LiveServer, live_server_fixture
from tests.webhooks.conftest import LOOPBACK
from tests.webhooks.receiver import Receiver

server = live_server_fixture(per_database=True, webhook_allow_networks=LOOPBACK)


@pytest.fixture
def cli(server: LiveServer, monkeypatch: pytest.MonkeyPatch) -> Cli:
    return cli_for(server, monkeypatch)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver(SystemClock()) as rec:
        yield rec


def api_get(server: LiveServer, path: str, **params: str) -> Any:
    with server.client() as api:
        reply = api.get(path, params=params)
    assert reply.status_code == 200, reply.text
    return reply.json()


def created(cli: Cli, *args: str) -> tuple[str, str]:
    """`webhooks create ARGS…`: the new endpoint's id and its secret (stdout's last line)."""
    made = ok(cli("webhooks", "create", *args))
    assert "shown once" in made.stderr
    lines = made.stdout.strip().splitlines()
    endpoint_id = lines[0].split("(id ", 1)[1].rstrip(").")
    return endpoint_id, lines[-1]


def test_endpoints_deliveries_and_the_audit_trail(
    cli: Cli, server: LiveServer, receiver: Receiver
) -> None:
    hook, secret = created(
        cli,
        receiver.url(),
        "--event",
        "video.ready",
        "--event",
        "video.error",
        "--description",
        "CI",
    )
    assert secret.startswith("whsec_")
    listed = as_json(cli("webhooks", "list", "--json"))
    assert listed == api_get(server, "/api/v1/webhooks")
    assert [(e["id"], e["events"], e["description"]) for e in listed] == [
        (hook, ["video.ready", "video.error"], "CI")
    ]
    assert (
        secret[:10] in listed[0]["secret_hint"] and secret not in ok(cli("webhooks", "list")).stdout
    )

    test = as_json(cli("webhooks", "test", hook, "--json"))
    assert (test["event_type"], test["state"]) == ("webhook.test", "pending")
    with server.runtime.db.session() as session:
        service.emit(session, server.runtime.clock, "video.ready", {"uid": "v1"}, video_uid="v1")
    run_jobs(server.runtime)
    assert len(receiver.requests) == 2
    log = as_json(cli("webhooks", "deliveries", "--endpoint", hook, "--json"))
    assert log == api_get(server, "/api/v1/webhooks/deliveries", endpoint_id=hook)
    assert [d["state"] for d in log["deliveries"]] == ["delivered", "delivered"]
    for_video = as_json(cli("webhooks", "deliveries", "--video", "v1", "--json"))["deliveries"]
    assert [d["event_type"] for d in for_video] == ["video.ready"]
    assert as_json(cli("webhooks", "deliveries", "--state", "failed", "--json"))["deliveries"] == []
    detail = as_json(cli("webhooks", "delivery", test["id"], "--json"))
    assert detail == api_get(server, f"/api/v1/webhooks/deliveries/{test['id']}")
    assert [a["status_code"] for a in detail["attempt_log"]] == [200]
    shown = ok(cli("webhooks", "delivery", test["id"])).stdout
    assert "attempts" in shown and "200" in shown and "webhook.test" in shown

    ok(cli("webhooks", "resend", test["id"], "--reason", "lost it"))
    run_jobs(server.runtime)
    assert [r.event_id for r in receiver.requests].count(test["event_id"]) == 2
    rotated = ok(cli("webhooks", "rotate", hook, "--expire-previous-in", "0"))
    new_secret = rotated.stdout.strip().splitlines()[-1]
    assert (
        new_secret.startswith("whsec_") and new_secret != secret and "shown once" in rotated.stderr
    )
    ok(cli("webhooks", "delete", hook, "--reason", "moved"))
    assert api_get(server, "/api/v1/webhooks") == []

    changes = api_get(server, "/api/v1/audit/all", area="webhooks")["entries"]
    assert [(c["action"], c["actor"], c["reason"]) for c in changes] == [
        ("webhook.deleted", CLI_USER, "moved"),
        ("webhook.secret_rotated", CLI_USER, None),
        ("webhook.resent", CLI_USER, "lost it"),
        ("webhook.tested", CLI_USER, None),
        ("webhook.created", CLI_USER, None),
    ]


def test_bad_input_and_unknown_ids_are_named(cli: Cli, receiver: Receiver) -> None:
    assert cli("webhooks", "deliveries", "--state", "lost").exit_code == 2
    assert cli("webhooks", "deliveries", "--limit", "501").exit_code == 2
    assert cli("webhooks", "rotate", "we_x", "--expire-previous-in", "-1").exit_code == 2
    refused(cli("webhooks", "create", "ftp://example.com/hook"), "INVALID_WEBHOOK_URL", "ftp")
    refused(
        cli("webhooks", "create", receiver.url(), REELOUT_WEBHOOK_ALLOW_NETWORKS=""),
        "WEBHOOK_ADDRESS_NOT_ALLOWED",
        "not allowed",
    )
    refused(cli("webhooks", "create", receiver.url(), "--event", "nope"), "UNKNOWN_EVENT", "nope")
    for command in ("delete", "rotate", "test"):
        missing = cli("webhooks", command, "we_nope")
        refused(missing, "WEBHOOK_NOT_FOUND", "no webhook endpoint with id 'we_nope'")
        assert "reelout webhooks list" in missing.stderr
    for command in ("delivery", "resend"):
        refused(cli("webhooks", command, "wd_nope"), "DELIVERY_NOT_FOUND", "'wd_nope'")
    hook, _ = created(cli, "http://127.0.0.1:9/hook")  # nobody listens there
    test = as_json(cli("webhooks", "test", hook, "--json"))
    refused(cli("webhooks", "resend", test["id"]), "DELIVERY_PENDING", "still being attempted")
