"""Webhook signing secrets at rest (issue 9 §5): stored sealed, shown once, hinted after; clear
ones from before are sealed on first use and by the hourly job; a changed server secret fails
deliveries with a code until the endpoint's secret is rotated."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select, update

from reelout.runtime import Runtime
from reelout.webhooks.models import WebhookEndpoint
from reelout.webhooks.secretbox import SecretBox, SecretUnreadable
from reelout.webhooks.signing import verify
from tests.support.jobs import run_jobs
from tests.support.live import LiveServer, StartLive
from tests.webhooks.conftest import deliveries, emit, subscribe
from tests.webhooks.receiver import Receiver

UNREADABLE = "WEBHOOK_SECRET_UNREADABLE"
OLD_SERVER_SECRET = "4XM5Zp7JtSz-1GNvHBMoUf8PR77s-Fe-0SzWBZrk8-o"
NEW_SERVER_SECRET = "oFgk8LohPMeO7cZRlj-fvFOO1rIRESMC2t31SVQQQMU"


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


def test_a_clear_secret_from_before_still_signs_until_the_worker_seals_it(
    server: LiveServer, receiver: Receiver
) -> None:
    rt, clear = server.runtime, "whsec_" + "c" * 43
    with server.client() as api:
        created = subscribe(api, receiver.url())
        other = subscribe(api, "https://hooks.example.com/other")
    store_in_clear(rt, created["id"], clear)
    store_in_clear(rt, other["id"], "whsec_" + "d" * 43)
    emit(rt)
    run_jobs(rt)  # deliveries only: no periodic tick
    [got] = receiver.requests
    assert verify(clear, got.signature, got.body, now=got.at)
    assert stored(rt, created["id"]).secret == clear
    run_jobs(rt, tick=True)  # the hourly sealer is due at a worker's first tick
    box = SecretBox(rt.secret)
    for endpoint, secret in ((created, clear), (other, "whsec_" + "d" * 43)):
        row = stored(rt, endpoint["id"])
        assert row.secret.startswith("fernet:") and box.open(row.secret) == secret


def test_a_changed_server_secret_fails_deliveries_until_the_secret_is_rotated(
    start_live: StartLive, receiver: Receiver, database_url: str
) -> None:
    before = start_live(secret_key=OLD_SERVER_SECRET, database_url=database_url)
    with before.client() as api:
        created = subscribe(api, receiver.url())
    before.stop()
    server = start_live(secret_key=NEW_SERVER_SECRET, database_url=database_url)
    emit(server.runtime)
    run_jobs(server.runtime)
    with server.client() as api:
        hint = api.get(f"/api/v1/webhooks/{created['id']}").json()["secret_hint"]
        [failed] = deliveries(api)
        rotated: dict[str, Any] = api.post(
            f"/api/v1/webhooks/{created['id']}/rotate-secret",
            json={"expire_previous_in_seconds": 3600},
        ).json()
        second = emit(server.runtime)
        run_jobs(server.runtime)
        [after] = deliveries(api, event_id=second)
    assert hint is None
    assert failed["state"] == "failed" and failed["last_error_code"] == UNREADABLE
    assert "rotate" in failed["last_error"] and failed["failure_reason"].startswith(UNREADABLE)
    assert after["state"] == "delivered"
    [got] = receiver.requests
    assert got.signature.count("v1=") == 1, "the unreadable old secret signs nothing"
    assert verify(rotated["secret"], got.signature, got.body, now=got.at)
