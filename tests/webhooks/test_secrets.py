"""Webhook signing secrets at rest (issue 9 §5): stored sealed, shown once, hinted after; clear
ones from before are sealed on first use and by the hourly job; a changed server secret fails
deliveries with a code until the endpoint's secret is rotated."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select, update

from reelout.clock import ManualClock
from reelout.jobs.worker import Worker
from reelout.runtime import Runtime
from reelout.tasks import build_registry
from reelout.webhooks.models import WebhookEndpoint
from reelout.webhooks.secretbox import SecretBox, SecretUnreadable
from reelout.webhooks.signing import verify
from tests.conftest import LiveServer
from tests.webhooks.conftest import StartLive, deliveries, emit, run_jobs, subscribe
from tests.webhooks.receiver import Receiver

UNREADABLE = "WEBHOOK_SECRET_UNREADABLE"
OLD_SERVER_SECRET = "old-server-secret-" + "a" * 32
NEW_SERVER_SECRET = "new-server-secret-" + "b" * 32


def stored(rt: Runtime, endpoint_id: str) -> WebhookEndpoint:
    with rt.db.read() as session:
        row = session.scalars(select(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id))
        return row.one()


def store_in_clear(rt: Runtime, endpoint_id: str, secret: str) -> None:
    """What a row written before encryption holds: the secret itself."""
    with rt.db.session() as session:
        session.execute(
            update(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id).values(secret=secret)
        )


def test_a_secret_is_stored_sealed_and_shown_once_then_as_a_hint(
    server: LiveServer, receiver: Receiver
) -> None:
    with server.client() as api:
        created = subscribe(api, receiver.url())
        listed = api.get("/api/v1/webhooks").json()
        one = api.get(f"/api/v1/webhooks/{created['id']}").json()
    secret = created["secret"]
    row = stored(server.runtime, created["id"])
    assert row.secret.startswith("fernet:") and secret not in row.secret
    assert secret.removeprefix("whsec_") not in row.secret
    assert SecretBox(server.runtime.secret).open(row.secret) == secret
    hint = secret[: len("whsec_") + 4] + "…"
    assert created["secret_hint"] == listed[0]["secret_hint"] == one["secret_hint"] == hint
    assert "secret" not in listed[0] and "secret" not in one
    emit(server.runtime)
    run_jobs(server.runtime)
    [got] = receiver.requests
    assert verify(secret, got.signature, got.body, now=got.at)


def test_a_box_opens_only_what_the_same_server_secret_sealed() -> None:
    sealed = SecretBox(OLD_SERVER_SECRET).seal("whsec_abc")
    assert SecretBox(OLD_SERVER_SECRET).open(sealed) == "whsec_abc"
    assert SecretBox(OLD_SERVER_SECRET).open("whsec_clear") == "whsec_clear"
    with pytest.raises(SecretUnreadable, match="rotate"):
        SecretBox(NEW_SERVER_SECRET).open(sealed)


def test_a_clear_secret_from_before_is_sealed_on_its_first_use(
    server: LiveServer, receiver: Receiver
) -> None:
    clear = "whsec_" + "c" * 43
    with server.client() as api:
        created = subscribe(api, receiver.url())
    store_in_clear(server.runtime, created["id"], clear)
    emit(server.runtime)
    run_jobs(server.runtime)
    [got] = receiver.requests
    assert verify(clear, got.signature, got.body, now=got.at)
    assert stored(server.runtime, created["id"]).secret.startswith("fernet:")


def test_clear_secrets_are_sealed_by_the_hourly_job(server: LiveServer) -> None:
    rt = server.runtime
    with server.client() as api:
        created = [subscribe(api, f"https://hooks.example.com/{n}") for n in range(2)]
    store_in_clear(rt, created[0]["id"], "whsec_" + "d" * 43)
    store_in_clear(rt, created[1]["id"], "whsec_" + "e" * 43)
    worker = Worker(rt, build_registry(), worker_id="test")
    while worker.run_once(tick=True):  # the hourly sealer is due on a fresh database
        pass
    box = SecretBox(rt.secret)
    for endpoint, letter in zip(created, "de", strict=True):
        row = stored(rt, endpoint["id"])
        assert row.secret.startswith("fernet:")
        assert box.open(row.secret) == "whsec_" + letter * 43


def restart_with(start_live: StartLive, old: LiveServer, secret_key: str) -> LiveServer:
    old.stop()
    return start_live(secret_key=secret_key)


def test_a_changed_server_secret_fails_deliveries_until_the_secret_is_rotated(
    start_live: StartLive, receiver: Receiver, clock: ManualClock
) -> None:
    before = start_live(secret_key=OLD_SERVER_SECRET)
    with before.client() as api:
        created = subscribe(api, receiver.url())
    server = restart_with(start_live, before, NEW_SERVER_SECRET)
    emit(server.runtime)
    run_jobs(server.runtime)
    with server.client() as api:
        hint = api.get(f"/api/v1/webhooks/{created['id']}").json()["secret_hint"]
        [failed] = deliveries(api)
        rotated: dict[str, Any] = api.post(
            f"/api/v1/webhooks/{created['id']}/rotate-secret",
            json={"expire_previous_in_seconds": 3600},
        ).json()
        emit(server.runtime)
        run_jobs(server.runtime)
        after = deliveries(api)[0]
    assert hint is None
    assert failed["state"] == "failed" and failed["last_error_code"] == UNREADABLE
    assert "rotate" in failed["last_error"] and failed["failure_reason"].startswith(UNREADABLE)
    assert after["state"] == "delivered"
    [got] = receiver.requests
    assert got.signature.count("v1=") == 1, "the unreadable old secret signs nothing"
    assert verify(rotated["secret"], got.signature, got.body, now=got.at)
