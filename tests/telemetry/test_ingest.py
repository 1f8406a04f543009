"""POST /api/v1/telemetry/events: batches in every shape apps send, each event checked on its own,
stored once per event_id, every limit named and tested on both sides."""

from __future__ import annotations

import gzip
import uuid
from typing import Any

import httpx
import jsonschema
import orjson
import pytest
from sqlalchemy import text

from reelout.telemetry import service
from tests.telemetry.conftest import StartTelemetry, Telemetry, event, upload_completed

EVENTS = "/api/v1/telemetry/events"


def test_a_batch_is_stored_and_counted(telemetry: Telemetry) -> None:
    batch = [upload_completed(), event("play_request", autoplay=True), event("playing")]
    reply = telemetry.send(batch)
    assert reply.status_code == 200, reply.text
    assert reply.json() == {"accepted": 3, "duplicates": 0, "rejected": []}
    assert telemetry.stored() == 3
    stored = service.stored_event(telemetry.live.runtime, uuid.UUID(batch[0]["event_id"]))
    assert stored is not None
    assert stored["environment"] == "production"
    assert stored["source"] == "client"
    assert stored["method"] == "tus"
    assert "received_at" in stored


def test_each_event_is_checked_on_its_own(telemetry: Telemetry) -> None:
    batch = [
        upload_completed(),
        event("upload_completed", bytes=5),  # no duration_ms, no method
        event("teleport"),
        "not an object",
        event("rating", score=9),
        event("processing_ready"),  # only the server reports processing
        event("rating", score=5),
    ]
    reply = telemetry.send(batch)
    assert reply.status_code == 200, reply.text
    answer = reply.json()
    assert answer["accepted"] == 2
    rejected = {r["index"]: r for r in answer["rejected"]}
    assert sorted(rejected) == [1, 2, 3, 4, 5]
    assert rejected[1]["code"] == "INVALID_EVENT"
    assert "duration_ms" in rejected[1]["message"]
    assert "teleport" in rejected[2]["message"]
    assert rejected[3]["code"] == "INVALID_EVENT"
    assert "score" in rejected[4]["message"]
    assert rejected[5]["code"] == "SERVER_ONLY_TYPE"
    assert telemetry.stored() == 2


def test_nothing_is_accepted_twice(telemetry: Telemetry) -> None:
    first, second = upload_completed(), upload_completed()
    assert telemetry.send([first, first, second]).json()["accepted"] == 2
    again = telemetry.send([first, second, upload_completed()]).json()
    assert again == {"accepted": 1, "duplicates": 2, "rejected": []}
    assert telemetry.stored() == 3


@pytest.mark.postgres
def test_nothing_is_accepted_twice_on_postgresql(
    start_telemetry: StartTelemetry, database_url: str
) -> None:
    telemetry = start_telemetry(database_url=database_url)
    batch = [upload_completed() for _ in range(50)]
    assert telemetry.send(batch).json()["accepted"] == 50
    assert telemetry.send(batch).json() == {"accepted": 0, "duplicates": 50, "rejected": []}
    assert telemetry.stored() == 50


def test_every_shape_an_app_sends(telemetry: Telemetry) -> None:
    with telemetry.app() as app:
        single = app.post(EVENTS, json=event("pause"))
        wrapped = app.post(EVENTS, json={"events": [event("pause"), event("seeking")]})
        lines = b"\n".join(orjson.dumps(event("seeked")) for _ in range(3)) + b"\n"
        ndjson = app.post(EVENTS, content=lines, headers={"content-type": "application/x-ndjson"})
        beacon = app.post(
            EVENTS,
            content=orjson.dumps([event("view_end", reason="background")]),
            headers={"content-type": "text/plain;charset=UTF-8"},
        )
        packed = app.post(
            EVENTS,
            content=gzip.compress(orjson.dumps([event("pause")] * 1)),
            headers={"content-type": "application/json", "content-encoding": "gzip"},
        )
    assert [r.json()["accepted"] for r in (single, wrapped, ndjson, beacon, packed)] == [
        1,
        2,
        3,
        1,
        1,
    ]


def test_sendbeacon_may_name_its_key_in_the_address(telemetry: Telemetry) -> None:
    """navigator.sendBeacon sets no headers: the (public) client key rides in the query."""
    with telemetry.live.client(token=None) as anonymous:
        refused = anonymous.post(EVENTS, json=[event("pause")])
        taken = anonymous.post(f"{EVENTS}?key={telemetry.key}", json=[event("pause")])
    assert refused.status_code == 401
    assert refused.json()["code"] == "MISSING_KEY"
    assert taken.json()["accepted"] == 1


def test_an_ndjson_line_that_is_not_json_is_rejected_alone(telemetry: Telemetry) -> None:
    body = orjson.dumps(event("pause")) + b"\n{oops\n" + orjson.dumps(event("seeking"))
    with telemetry.app() as app:
        reply = app.post(EVENTS, content=body, headers={"content-type": "application/x-ndjson"})
    answer = reply.json()
    assert answer["accepted"] == 2
    assert [(r["index"], r["code"]) for r in answer["rejected"]] == [(1, "INVALID_JSON")]


@pytest.mark.parametrize(
    ("content", "headers", "status", "code"),
    [
        (b"{not json", {"content-type": "application/json"}, 400, "INVALID_JSON"),
        (b"[]", {"content-type": "application/xml"}, 415, "UNSUPPORTED_MEDIA_TYPE"),
        (
            b"[]",
            {"content-type": "application/json", "content-encoding": "br"},
            415,
            "UNSUPPORTED_ENCODING",
        ),
        (
            b"\x1f\x8b not gzip",
            {"content-type": "application/json", "content-encoding": "gzip"},
            400,
            "INVALID_GZIP",
        ),
        (
            gzip.compress(b"[]")[:-6],
            {"content-type": "application/json", "content-encoding": "gzip"},
            400,
            "INVALID_GZIP",
        ),
        (b"[" * 2000 + b"]" * 2000, {"content-type": "application/json"}, 400, "JSON_TOO_DEEP"),
    ],
    ids=["not-json", "xml", "brotli", "not-gzip", "cut-gzip", "too-deep"],
)
def test_a_body_it_cannot_read_is_refused_whole(
    telemetry: Telemetry, content: bytes, headers: dict[str, str], status: int, code: str
) -> None:
    with telemetry.app() as app:
        reply = app.post(EVENTS, content=content, headers=headers)
    assert reply.status_code == status, reply.text
    assert reply.json()["code"] == code
    assert reply.json()["message"]
    assert telemetry.stored() == 0


def test_keys_that_name_no_environment_are_refused(telemetry: Telemetry) -> None:
    with telemetry.live.client() as admin:  # the admin key
        reply = admin.post(EVENTS, json=[event("pause")])
    assert reply.status_code == 403
    with telemetry.live.client(token="rk_nope") as stranger:
        assert stranger.post(EVENTS, json=[event("pause")]).status_code == 401
    assert telemetry.stored() == 0


def test_batch_count_limit_on_both_sides(start_telemetry: StartTelemetry) -> None:
    telemetry = start_telemetry(telemetry_max_batch_events=5)
    assert telemetry.send([event("pause") for _ in range(5)]).json()["accepted"] == 5
    reply = telemetry.send([event("pause") for _ in range(6)])
    assert reply.status_code == 413
    assert reply.json()["code"] == "BATCH_TOO_LARGE"
    assert "REELOUT_TELEMETRY_MAX_BATCH_EVENTS" in reply.json()["message"]
    assert telemetry.stored() == 5


def _exactly(size: int) -> list[dict[str, Any]]:
    """One event whose batch body is exactly `size` bytes."""
    item = event("complaint", kind="x")
    item["kind"] = "x" * (size - len(orjson.dumps([item])) + 1)
    assert len(orjson.dumps([item])) == size
    return [item]


def test_body_limit_on_both_sides(start_telemetry: StartTelemetry) -> None:
    telemetry = start_telemetry(telemetry_max_body_bytes=2048, telemetry_max_event_bytes=4096)
    # the kind is long; the model caps it at 64 characters, so this event is rejected alone
    fits = telemetry.send(_exactly(2048), headers={"content-type": "application/json"})
    assert fits.status_code == 200
    with telemetry.app() as app:
        over = app.post(
            EVENTS, content=orjson.dumps(_exactly(2049)), headers={"content-type": "text/plain"}
        )
    assert over.status_code == 413
    assert over.json()["code"] == "BODY_TOO_LARGE"
    assert "REELOUT_TELEMETRY_MAX_BODY_BYTES" in over.json()["message"]


def test_decoded_limit_stops_a_gzip_bomb(start_telemetry: StartTelemetry) -> None:
    telemetry = start_telemetry(telemetry_max_decoded_bytes=64 * 1024)
    fits = orjson.dumps([event("pause", platform="web")] * 1)
    bomb = b"[" + b" " * (64 * 1024) + b"]"  # 64 KiB + 2 of JSON, a few hundred bytes gzipped
    with telemetry.app() as app:
        headers = {"content-type": "application/json", "content-encoding": "gzip"}
        ok = app.post(EVENTS, content=gzip.compress(fits), headers=headers)
        refused = app.post(EVENTS, content=gzip.compress(bomb), headers=headers)
    assert ok.json()["accepted"] == 1
    assert len(gzip.compress(bomb)) < 1024
    assert refused.status_code == 413
    assert "REELOUT_TELEMETRY_MAX_DECODED_BYTES" in refused.json()["message"]


def test_event_size_limit_on_both_sides(start_telemetry: StartTelemetry) -> None:
    telemetry = start_telemetry(telemetry_max_event_bytes=400)
    small = event("error", code="E1", fatal=True)
    small["message"] = "m" * (400 - len(orjson.dumps(small)) - len(b',"message":""'))
    big = {**small, "event_id": str(uuid.uuid4()), "message": small["message"] + "m"}
    assert len(orjson.dumps(small)) == 400
    answer = telemetry.send([small, big]).json()
    assert answer["accepted"] == 1
    assert [(r["index"], r["code"]) for r in answer["rejected"]] == [(1, "EVENT_TOO_LARGE")]


def nested(levels: int) -> Any:
    """A JSON value nesting `levels` arrays deep (0: a plain number)."""
    value: Any = 1
    for _ in range(levels):
        value = [value]
    return value


@pytest.mark.parametrize("ndjson", [False, True], ids=["json", "ndjson"])
def test_event_depth_limit_on_both_sides(start_telemetry: StartTelemetry, ndjson: bool) -> None:
    """REELOUT_JSON_MAX_DEPTH holds for each event (its object is one level): one nesting
    deeper is rejected alone, its neighbours stored."""
    telemetry = start_telemetry(json_max_depth=8)
    at_limit = {**event("pause"), "extension": nested(7)}  # unknown fields are kept as sent
    over = {**event("pause"), "extension": nested(8)}
    if ndjson:
        body = b"\n".join(orjson.dumps(e) for e in (at_limit, over))
        with telemetry.app() as app:
            reply = app.post(EVENTS, content=body, headers={"content-type": "application/x-ndjson"})
    else:
        reply = telemetry.send([at_limit, over])
    answer = reply.json()
    assert answer["accepted"] == 1
    assert [(r["index"], r["code"]) for r in answer["rejected"]] == [(1, "JSON_TOO_DEEP")]
    assert "REELOUT_JSON_MAX_DEPTH" in answer["rejected"][0]["message"]
    assert telemetry.stored() == 1


def test_rate_limit_per_caller_answers_429_with_retry_after(
    start_telemetry: StartTelemetry,
) -> None:
    telemetry = start_telemetry(rate_limit_caller_per_second=0.01, rate_limit_caller_burst=2)
    replies = [telemetry.send([event("pause")]) for _ in range(3)]
    assert [r.status_code for r in replies] == [200, 200, 429]
    assert replies[2].json()["code"] == "RATE_LIMITED"
    assert int(replies[2].headers["retry-after"]) >= 1
    assert telemetry.stored() == 2


def test_telemetry_has_its_own_budget_so_flags_keep_answering(
    start_telemetry: StartTelemetry,
) -> None:
    """The same key and address: telemetry spent its budget, its flag evaluations did not."""
    telemetry = start_telemetry(rate_limit_caller_per_second=0.01, rate_limit_caller_burst=2)
    assert [telemetry.send([event("pause")]).status_code for _ in range(3)] == [200, 200, 429]
    evaluation = {"context": {"targetingKey": "u1"}}
    with telemetry.app() as app:
        flags = [app.post("/ofrep/v1/evaluate/flags", json=evaluation) for _ in range(3)]
    assert [reply.status_code for reply in flags] == [200, 200, 429]


def test_the_schema_describes_what_the_ingest_takes(telemetry: Telemetry) -> None:
    with telemetry.live.client(token=None) as anyone:
        schema = anyone.get("/api/v1/telemetry/schema").json()
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    good = upload_completed(flags={"new-uploader": "on"})
    assert validator.is_valid(good)
    assert not validator.is_valid({**good, "method": "carrier-pigeon"})
    assert not validator.is_valid(event("teleport"))
    assert telemetry.send([good]).json()["accepted"] == 1


def test_a_device_clock_ahead_does_not_write_the_future(telemetry: Telemetry) -> None:
    ahead = event("pause", client_time="2099-01-01T00:00:00Z")
    telemetry.send([ahead])
    with telemetry.live.runtime.db.read() as session:
        from reelout.telemetry.models import TelemetryEvent

        row = session.query(TelemetryEvent).one()
    assert row.event_time <= row.received_at


def test_cors_preflight_lets_a_browser_app_send(start_telemetry: StartTelemetry) -> None:
    telemetry = start_telemetry(cors_origins=["https://app.example"])
    with httpx.Client(base_url=telemetry.live.url) as browser:
        reply = browser.options(
            EVENTS,
            headers={
                "origin": "https://app.example",
                "access-control-request-method": "POST",
                "access-control-request-headers": "authorization,content-type",
            },
        )
    assert reply.status_code == 200
    assert reply.headers["access-control-allow-origin"] == "https://app.example"


def test_metrics_count_the_ingest_by_type_and_outcome(telemetry: Telemetry) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    first = upload_completed()
    telemetry.send([first, event("pause"), event("rating", score=9)])
    telemetry.send([first])
    with telemetry.live.client(token=None) as scraper:
        text = scraper.get("/metrics").text
    samples = {
        (s.labels["type"], s.labels["outcome"]): s.value
        for family in text_string_to_metric_families(text)
        if family.name == "reelout_telemetry_events"
        for s in family.samples
        if s.name.endswith("_total")
    }
    assert samples[("upload_completed", "accepted")] == 1
    assert samples[("pause", "accepted")] == 1
    assert samples[("upload_completed", "duplicate")] == 1
    assert samples[("other", "rejected")] == 1


def test_a_batch_the_database_refuses_is_503_and_safe_to_send_again(
    telemetry: Telemetry,
) -> None:
    """When the write fails (here: a real SQLite trigger refuses every insert), the app hears
    503 EVENTS_NOT_STORED with Retry-After, nothing of the batch is kept, and the same batch
    sent again once the database takes writes is stored whole."""
    kept = [event("rating", score=4)]
    assert telemetry.send(kept).status_code == 200
    refuse = (
        "CREATE TRIGGER refuse_events BEFORE INSERT ON telemetry_events "
        "BEGIN SELECT RAISE(ABORT, 'disk says no'); END"
    )
    with telemetry.live.runtime.db.session() as session:
        session.execute(text(refuse))
    batch = [event("rating", score=5), event("complaint", kind="quality")]
    reply = telemetry.send(batch)
    assert reply.status_code == 503, reply.text
    assert reply.json()["code"] == "EVENTS_NOT_STORED"
    assert reply.headers["Retry-After"] == "5"
    assert "send it again" in reply.json()["message"]
    assert telemetry.stored() == 1
    with telemetry.live.runtime.db.session() as session:
        session.execute(text("DROP TRIGGER refuse_events"))
    again = telemetry.send(batch)
    assert again.status_code == 200, again.text
    assert again.json()["accepted"] == 2
    assert telemetry.stored() == 3
