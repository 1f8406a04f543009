"""Whole flag sets over the API: byte-exact round trip, validation with pointers, ETag/If-Match."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from tests.flags.admin.conftest import FLAG_SET, put_set, validate_with_schema
from tests.support.live import LiveServer

SHARED_SCHEMA = Path(__file__).resolve().parents[4] / "shared" / "specs" / "flagd-flags.schema.json"


def test_an_environment_starts_empty(api: httpx.Client) -> None:
    reply = api.get("/api/v1/environments/preview/flagset")
    assert reply.status_code == 200
    assert reply.json() == {"flags": {}}
    assert reply.headers["etag"] == '"preview-r0"'
    assert reply.headers["content-type"] == "application/json"


def test_the_round_trip_is_byte_identical(api: httpx.Client) -> None:
    written = put_set(api, "development")
    assert written.status_code == 200, written.text
    assert written.json() == {
        "environment": "development",
        "revision": 1,
        "etag": '"development-r1"',
        "changed": True,
    }
    assert written.headers["etag"] == '"development-r1"'
    reply = api.get("/api/v1/environments/development/flagset")
    assert reply.content == FLAG_SET.encode()
    assert reply.headers["etag"] == '"development-r1"'
    assert reply.headers["content-type"] == "application/json"
    validate_with_schema(reply.json())
    # other environments are untouched
    assert api.get("/api/v1/environments/production/flagset").json() == {"flags": {}}


def test_the_same_bytes_again_make_no_new_revision(api: httpx.Client) -> None:
    put_set(api, "development")
    again = put_set(api, "development")
    assert again.json()["changed"] is False
    assert again.json()["revision"] == 1


def test_invalid_sets_name_every_fault_by_pointer_and_change_nothing(api: httpx.Client) -> None:
    put_set(api, "development")
    bad = {
        "flags": {
            "a": {
                "state": "ENABLED",
                "variants": {"on": True, "off": False},
                "defaultVariant": "x",
            },
            "b": {"variants": {"on": True}},
            "c": {"state": "ENABLED", "variants": {"on": True, "off": "no"}},
            "d": {"state": "MAYBE", "variants": {"on": True}},
            "e": {
                "state": "ENABLED",
                "variants": {"on": True},
                "targeting": {"if": [{"$ref": "nope"}, "on", None]},
            },
        }
    }
    reply = put_set(api, "development", json.dumps(bad))
    assert reply.status_code == 400
    error = reply.json()
    assert error["code"] == "INVALID_FLAG_SET"
    pointers = [e["pointer"] for e in error["details"]["errors"]]
    assert pointers == [
        "/flags/a/defaultVariant",
        "/flags/b/state",
        "/flags/c/variants/off",
        "/flags/d/state",
        "/flags/e/targeting/if/0/$ref",
    ]
    assert all(e["message"] for e in error["details"]["errors"])
    current = api.get("/api/v1/environments/development/flagset")
    assert current.content == FLAG_SET.encode()
    assert current.headers["etag"] == '"development-r1"'


def test_malformed_json_is_refused(api: httpx.Client) -> None:
    for text in ("{", '{"flags": {}, "flags": {}}', '{"flags": {"a": NaN}}', "[]"):
        reply = put_set(api, "preview", text)
        assert reply.status_code == 400, text
        assert reply.json()["code"] in ("INVALID_JSON", "INVALID_FLAG_SET")
    assert api.get("/api/v1/environments/preview/flagset").headers["etag"] == '"preview-r0"'


def test_a_stale_if_match_gets_412_and_changes_nothing(api: httpx.Client) -> None:
    first = put_set(api, "development", **{"If-Match": '"development-r0"'})
    assert first.status_code == 200
    changed = FLAG_SET.replace('"defaultVariant": "a"', '"defaultVariant": "b"')
    stale = put_set(api, "development", changed, **{"If-Match": '"development-r0"'})
    assert stale.status_code == 412
    assert stale.json()["code"] == "STALE_FLAG_SET"
    assert stale.headers["etag"] == '"development-r1"'
    assert api.get("/api/v1/environments/development/flagset").content == FLAG_SET.encode()
    fresh = put_set(api, "development", changed, **{"If-Match": '"development-r1"'})
    assert fresh.status_code == 200 and fresh.json()["revision"] == 2


def test_unknown_environments_are_404_listing_the_valid_ones(api: httpx.Client) -> None:
    for reply in (
        api.get("/api/v1/environments/staging/flagset"),
        put_set(api, "staging"),
        api.post("/api/v1/environments/staging/flags/x/kill"),
        api.post("/api/v1/environments/development/promote/staging"),
    ):
        assert reply.status_code == 404
        assert reply.json()["code"] == "UNKNOWN_ENVIRONMENT"
        assert reply.json()["details"]["environments"] == ["development", "preview", "production"]


def test_client_keys_and_anonymous_calls_are_refused(server: LiveServer) -> None:
    with server.client() as admin:
        created = admin.post("/api/v1/keys", json={"scope": "client", "environment": "development"})
        assert created.status_code == 201, created.text
    with server.client(created.json()["key"]) as client, server.client(None) as anonymous:
        for http, code in ((client, 403), (anonymous, 401)):
            assert http.get("/api/v1/environments/development/flagset").status_code == code
            assert put_set(http, "development").status_code == code
            assert http.get("/api/v1/audit").status_code == code
            assert http.post("/api/v1/flags/init?template=video-rollout").status_code == code


def test_the_shipped_schema_is_the_published_one() -> None:
    from reelout.flags.engine.validation import schema_text

    if SHARED_SCHEMA.exists():
        assert schema_text("flags.json") == SHARED_SCHEMA.read_text()
        targeting = SHARED_SCHEMA.with_name("flagd-targeting.schema.json")
        assert schema_text("targeting.json") == targeting.read_text()


def test_environments_list_their_current_revision(api: httpx.Client) -> None:
    put_set(api, "preview")
    listed = {e["name"]: e for e in api.get("/api/v1/environments").json()}
    assert list(listed) == ["development", "preview", "production"]
    assert (listed["preview"]["revision"], listed["preview"]["flags"]) == (1, 2)
    assert listed["preview"]["etag"] == '"preview-r1"' and listed["preview"]["updated_at"]
    assert (listed["production"]["revision"], listed["production"]["updated_at"]) == (0, None)


def test_if_none_match_gets_304_until_the_set_changes(api: httpx.Client) -> None:
    put_set(api, "development")
    url = "/api/v1/environments/development/flagset"
    same = api.get(url, headers={"If-None-Match": '"development-r1"'})
    assert same.status_code == 304 and same.content == b""
    assert same.headers["etag"] == '"development-r1"'
    api.post("/api/v1/environments/development/flags/player/kill")
    changed = api.get(url, headers={"If-None-Match": '"development-r1"'})
    assert changed.status_code == 200 and changed.headers["etag"] == '"development-r2"'
