"""Deliveries over real HTTP both ways: signatures, retries with the same event, the 24 h window,
timeouts, redirects, subscriptions, transactions, deleted endpoints, the delivery log, resends."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import func, select

from reelout import __version__
from reelout.clock import ManualClock
from reelout.jobs import service as jobs
from reelout.media import service as media
from reelout.runtime import Runtime
from reelout.webhooks import service
from reelout.webhooks.models import WebhookAttempt, WebhookEvent
from reelout.webhooks.signing import verify
from tests.support.jobs import run_jobs
from tests.support.live import LiveServer, StartLive, free_port
from tests.webhooks.conftest import deliveries, emit, subscribe
from tests.webhooks.receiver import Receiver, Reply

HOUR = 3600


def test_a_delivery_is_signed_and_carries_the_stored_body(
    server: LiveServer, receiver: Receiver
) -> None:
    with server.client() as api:
        endpoint = subscribe(api, receiver.url())
        event_id = emit(server.runtime, "video.ready", uid="abc", duration=12.5)
        assert run_jobs(server.runtime) == 1
        detail_of = deliveries(api, event_id=event_id)[0]
        detail = api.get(f"/api/v1/webhooks/deliveries/{detail_of['id']}").json()
    [got] = receiver.requests
    assert got.path == "/hook"
    assert verify(endpoint["secret"], got.signature, got.body, now=got.at)
    assert got.body == detail["body"].encode()
    assert got.headers["content-type"] == "application/json"
    assert got.headers["user-agent"] == f"Reelout-Webhooks/{__version__}"
    assert got.headers["reelout-event-id"] == event_id
    assert got.headers["reelout-event-type"] == "video.ready"
    assert json.loads(got.body) == {
        "id": event_id,
        "type": "video.ready",
        "created": "2026-01-01T00:00:00.000Z",
        "data": {"uid": "abc", "duration": 12.5},
    }
    assert b" " not in got.body, "compact JSON"
    assert detail["state"] == "delivered" and detail["attempts"] == 1
    assert detail["last_status"] == 200 and detail["delivered_at"]


def test_a_retried_delivery_sends_the_same_event_and_body_signed_anew(
    start_live: StartLive, clock: ManualClock, receiver: Receiver, database_url: str
) -> None:
    server = start_live(database_url=database_url)
    receiver.script(Reply(500), Reply(503))
    with server.client() as api:
        endpoint = subscribe(api, receiver.url())
        event_id = emit(server.runtime, "video.error", uid="v9", error_code="ERR_NON_VIDEO")
        run_jobs(server.runtime)
        [pending] = deliveries(api, event_id=event_id)
        for _ in range(2):
            clock.advance(HOUR)
            run_jobs(server.runtime)
        [done] = deliveries(api, event_id=event_id)
        detail = api.get(f"/api/v1/webhooks/deliveries/{done['id']}").json()
    assert len(receiver.requests) == 3
    assert {r.event_id for r in receiver.requests} == {event_id}
    assert len({r.body for r in receiver.requests}) == 1
    assert len({r.signature for r in receiver.requests}) == 3, "signed afresh each attempt"
    assert len({r.at for r in receiver.requests}) == 3
    for request in receiver.requests:
        assert verify(endpoint["secret"], request.signature, request.body, now=request.at)
    assert pending["state"] == "pending" and pending["last_status"] == 500
    assert pending["next_attempt_at"] is not None
    assert done["state"] == "delivered" and done["attempts"] == 3
    assert done["last_status"] == 200 and done["next_attempt_at"] is None
    assert [a["status_code"] for a in detail["attempt_log"]] == [500, 503, 200]
    assert detail["attempt_log"][0]["error"].startswith("HTTP 500")


def test_a_receiver_that_never_succeeds_is_given_up_after_24_hours(
    server: LiveServer, receiver: Receiver, clock: ManualClock
) -> None:
    receiver.default = Reply(500, body=b"boom")
    start = clock.now()
    with server.client() as api:
        subscribe(api, receiver.url())
        event_id = emit(server.runtime)
        run_jobs(server.runtime)
        for _ in range(80):
            clock.advance(HOUR)
            run_jobs(server.runtime)
            if deliveries(api, event_id=event_id)[0]["state"] != "pending":
                break
        [failed] = deliveries(api, event_id=event_id)
        detail = api.get(f"/api/v1/webhooks/deliveries/{failed['id']}").json()
        sent = len(receiver.requests)
        clock.advance(48 * HOUR)
        assert run_jobs(server.runtime) == 0
    assert len(receiver.requests) == sent, "no attempt after giving up"
    assert failed["state"] == "failed"
    assert failed["attempts"] == sent == len(detail["attempt_log"])
    assert "within 24 h" in failed["failure_reason"]
    assert failed["next_attempt_at"] is None
    last = receiver.requests[-1].at - int(start.timestamp())
    before_last = receiver.requests[-2].at - int(start.timestamp())
    assert before_last < 24 * HOUR <= last
    last_attempt = detail["attempt_log"][-1]
    assert last_attempt["response_bytes"] == 4 and last_attempt["response_excerpt"] is None
    with server.runtime.db.read() as session:
        [job] = jobs.list_jobs(session, kind="webhooks.deliver")
    assert job.state == jobs.DONE, "the window ended it, not the attempt count"
    assert job.attempts < job.max_attempts


def test_a_slow_receiver_times_out_and_it_is_recorded(
    start_live: StartLive, receiver: Receiver
) -> None:
    server = start_live(webhook_timeout_seconds=0.2)
    receiver.script(Reply(200, delay=0.6))
    with server.client() as api:
        subscribe(api, receiver.url())
        emit(server.runtime)
        run_jobs(server.runtime)
        [item] = deliveries(api)
    assert item["state"] == "pending"
    assert item["last_status"] is None
    assert "no answer within 0.2 s" in item["last_error"]
    assert item["last_duration_ms"] is not None
    assert item["attempts"] == 1


def test_an_unreachable_receiver_is_recorded(server: LiveServer) -> None:
    with server.client() as api:
        subscribe(api, f"http://127.0.0.1:{free_port()}/hook")
        emit(server.runtime)
        run_jobs(server.runtime)
        [item] = deliveries(api)
    assert item["state"] == "pending"
    assert item["last_error"].startswith("could not connect")


def test_a_redirect_is_not_followed(server: LiveServer, receiver: Receiver) -> None:
    receiver.script(Reply(302, headers={"Location": receiver.url("/elsewhere")}))
    with server.client() as api:
        subscribe(api, receiver.url())
        emit(server.runtime)
        run_jobs(server.runtime)
        [item] = deliveries(api)
    assert [r.path for r in receiver.requests] == ["/hook"]
    assert item["state"] == "pending" and item["last_status"] == 302
    assert "/elsewhere not followed" in item["last_error"]


def test_only_subscribed_event_types_are_delivered(server: LiveServer, receiver: Receiver) -> None:
    with server.client() as api:
        ready = subscribe(api, receiver.url("/ready"), ["video.ready"])
        errors = subscribe(api, receiver.url("/error"), ["video.error"])
        every = subscribe(api, receiver.url("/all"))
        emit(server.runtime, "video.ready")
        run_jobs(server.runtime)
        by_endpoint = {d["endpoint_id"] for d in deliveries(api, event_type="video.ready")}
        none_for_errors = deliveries(api, endpoint_id=errors["id"])
    assert sorted(r.path for r in receiver.requests) == ["/all", "/ready"]
    assert by_endpoint == {ready["id"], every["id"]}
    assert none_for_errors == []


def change_that_fails(rt: Runtime) -> None:
    """A unit of work that emits its event and then fails, so all of it rolls back."""
    with rt.db.session() as session:
        service.emit(session, rt.clock, "video.ready", {"uid": "v1"})
        raise RuntimeError("the state change failed")


def test_an_event_emitted_in_a_rolled_back_transaction_is_never_sent(
    server: LiveServer, receiver: Receiver
) -> None:
    rt = server.runtime
    with server.client() as api:
        subscribe(api, receiver.url())
        with pytest.raises(RuntimeError, match="state change failed"):
            change_that_fails(rt)
        assert run_jobs(rt) == 0
        assert deliveries(api) == []
    assert receiver.requests == []


def test_deleting_an_endpoint_stops_its_pending_deliveries(
    server: LiveServer, receiver: Receiver, clock: ManualClock
) -> None:
    receiver.default = Reply(500)
    with server.client() as api:
        endpoint = subscribe(api, receiver.url())
        emit(server.runtime)  # attempted once, fails
        run_jobs(server.runtime)
        emit(server.runtime)  # never attempted
        assert api.delete(f"/api/v1/webhooks/{endpoint['id']}").status_code == 204
        clock.advance(HOUR)
        run_jobs(server.runtime)
        items = deliveries(api, endpoint_id=endpoint["id"])
        resend = api.post(f"/api/v1/webhooks/deliveries/{items[0]['id']}/resend")
    assert len(receiver.requests) == 1
    assert [d["state"] for d in items] == ["failed", "failed"]
    assert all("endpoint was deleted" in d["failure_reason"] for d in items)
    assert resend.status_code == 409 and resend.json()["code"] == "WEBHOOK_DELETED"


def test_a_finished_delivery_can_be_resent_with_the_same_event(
    server: LiveServer, receiver: Receiver
) -> None:
    with server.client() as api:
        endpoint = subscribe(api, receiver.url())
        event_id = emit(server.runtime)
        run_jobs(server.runtime)
        [item] = deliveries(api)
        resent = api.post(f"/api/v1/webhooks/deliveries/{item['id']}/resend")
        again = api.post(f"/api/v1/webhooks/deliveries/{item['id']}/resend")
        run_jobs(server.runtime)
        [after] = deliveries(api)
        missing = api.post("/api/v1/webhooks/deliveries/wd_nope/resend")
    assert resent.status_code == 202 and resent.json()["state"] == "pending"
    assert again.status_code == 409 and again.json()["code"] == "DELIVERY_PENDING"
    assert [r.event_id for r in receiver.requests] == [event_id, event_id]
    assert receiver.requests[0].body == receiver.requests[1].body
    assert verify(
        endpoint["secret"],
        receiver.requests[1].signature,
        receiver.requests[1].body,
        now=receiver.requests[1].at,
    )
    assert after["state"] == "delivered" and after["attempts"] == 2
    assert missing.status_code == 404 and missing.json()["code"] == "DELIVERY_NOT_FOUND"


def test_a_rotated_secret_signs_alongside_the_old_one_until_it_expires(
    server: LiveServer, receiver: Receiver, clock: ManualClock
) -> None:
    with server.client() as api:
        endpoint = subscribe(api, receiver.url())
        rotated = api.post(
            f"/api/v1/webhooks/{endpoint['id']}/rotate-secret",
            json={"expire_previous_in_seconds": HOUR},
        ).json()
        emit(server.runtime)
        run_jobs(server.runtime)
        clock.advance(HOUR + 1)
        emit(server.runtime)
        run_jobs(server.runtime)
    during, after = receiver.requests
    assert during.signature.count("v1=") == 2
    assert verify(rotated["secret"], during.signature, during.body, now=during.at)
    assert verify(endpoint["secret"], during.signature, during.body, now=during.at)
    assert after.signature.count("v1=") == 1
    assert verify(rotated["secret"], after.signature, after.body, now=after.at)
    assert not verify(endpoint["secret"], after.signature, after.body, now=after.at)


def page_through(server: LiveServer, **query: Any) -> list[list[str]]:
    pages: list[list[str]] = []
    cursor: str | None = None
    with server.client() as api:
        while True:
            params = {**query, **({"cursor": cursor} if cursor else {})}
            page = api.get("/api/v1/webhooks/deliveries", params=params).json()
            pages.append([d["event_id"] for d in page["deliveries"]])
            cursor = page["next_cursor"]
            if cursor is None:
                return pages


def test_the_log_is_newest_first_and_pages_by_cursor(
    server: LiveServer, receiver: Receiver, clock: ManualClock
) -> None:
    receiver.script(Reply(500))
    with server.client() as api:
        subscribe(api, receiver.url())
    emitted = []
    for n in range(5):
        emitted.append(emit(server.runtime, "video.ready" if n % 2 else "video.error"))
        clock.advance(1)
    run_jobs(server.runtime)
    pages = page_through(server, limit=2)
    assert pages == [emitted[::-1][0:2], emitted[::-1][2:4], emitted[::-1][4:]]
    assert page_through(server, state="pending") == [[emitted[0]]]
    assert page_through(server, state="delivered", event_type="video.ready") == [
        [emitted[3], emitted[1]]
    ]
    with server.client() as api:
        bad_cursor = api.get("/api/v1/webhooks/deliveries", params={"cursor": "%%%"})
        bad_type = api.get("/api/v1/webhooks/deliveries", params={"event_type": "video.gone"})
        bad_state = api.get("/api/v1/webhooks/deliveries", params={"state": "lost"})
    assert bad_cursor.status_code == 400 and bad_cursor.json()["code"] == "INVALID_CURSOR"
    assert bad_type.status_code == 400 and bad_type.json()["code"] == "UNKNOWN_EVENT"
    assert bad_state.status_code == 422


def test_emit_refuses_an_unknown_event_type(server: LiveServer) -> None:
    with pytest.raises(ValueError, match="unknown webhook event type"):
        emit(server.runtime, "video.exploded")


def test_old_finished_deliveries_are_pruned_on_schedule(
    server: LiveServer, receiver: Receiver, clock: ManualClock
) -> None:
    with server.client() as api:
        subscribe(api, receiver.url())
        old_event = emit(server.runtime)
        run_jobs(server.runtime)
        [old] = deliveries(api)
        clock.advance(31 * 24 * HOUR)  # past REELOUT_WEBHOOK_RETENTION_DAYS (30)
        new_event = emit(server.runtime)
        run_jobs(server.runtime, tick=True)  # the hourly pruner is due on a fresh database
        left = deliveries(api)
        gone = api.get(f"/api/v1/webhooks/deliveries/{old['id']}")
    assert [d["event_id"] for d in left] == [new_event]
    assert gone.status_code == 404
    with server.runtime.db.read() as session:
        events = list(session.scalars(select(WebhookEvent.id)))
        attempts = session.scalar(select(func.count()).select_from(WebhookAttempt))
    assert events == [new_event] and old_event != new_event
    assert attempts == 1, "only the new delivery's attempt is left"


def test_the_log_lists_one_videos_deliveries(server: LiveServer, receiver: Receiver) -> None:
    """A video's events name it (media announces them), so `video_uid` narrows the log to it."""
    rt = server.runtime
    with server.client() as api:
        subscribe(api, receiver.url())
        uids = [api.post("/api/v1/videos", json={}).json()["uid"] for _ in range(2)]
    for uid in uids:
        with rt.db.session() as session:
            media.upload_failed(session, rt.clock, uid, "UPLOAD_EXPIRED", "gone", base_url="")
    emit(rt, "video.ready", uid=uids[0])  # an event that names no video
    with server.client() as api:
        mine = deliveries(api, video_uid=uids[0])
        everything = deliveries(api)
        unknown = deliveries(api, video_uid="f" * 32)
    assert [d["event_type"] for d in mine] == ["video.error"]
    assert len(everything) == 3 and unknown == []
