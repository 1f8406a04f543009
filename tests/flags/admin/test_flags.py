"""One flag at a time: get, put, merge-patch, delete, the kill switch, and their audit entries."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from tests.flags.admin.conftest import FLAG_SET, audit, put_set, validate_with_schema
from tests.support.live import LiveServer, serving
from tests.support.settings import make_settings

FLAG = "/api/v1/environments/development/flags"


def test_get_put_patch_delete_one_flag(api: httpx.Client) -> None:
    put_set(api, "development")
    got = api.get(f"{FLAG}/player")
    assert got.status_code == 200
    assert got.json()["defaultVariant"] == "a"
    assert got.headers["etag"] == '"development-r1"'

    new = {"state": "ENABLED", "variants": {"small": 1, "big": 10}, "defaultVariant": "small"}
    created = api.put(f"{FLAG}/max_renditions", json=new)
    assert created.status_code == 200, created.text
    assert created.json() == new
    assert created.headers["etag"] == '"development-r2"'

    patched = api.patch(f"{FLAG}/max_renditions", json={"defaultVariant": "big"})
    assert patched.status_code == 200, patched.text
    assert patched.json()["defaultVariant"] == "big"
    assert patched.json()["variants"] == {"small": 1, "big": 10}

    assert api.delete(f"{FLAG}/player").status_code == 204
    assert api.get(f"{FLAG}/player").json()["code"] == "FLAG_NOT_FOUND"
    document = api.get("/api/v1/environments/development/flagset").json()
    assert set(document["flags"]) == {"use_tus_upload", "max_renditions"}
    assert "$evaluators" in document  # the rest of the set is kept
    validate_with_schema(document)
    actions = [(e["action"], e["flag"], e["revision"]) for e in audit(api, env="development")]
    assert actions == [
        ("delete", "player", 4),
        ("patch", "max_renditions", 3),
        ("put", "max_renditions", 2),
        ("put", None, 1),
    ]


def test_an_invalid_flag_edit_is_refused_with_its_pointer(api: httpx.Client) -> None:
    put_set(api, "development")
    reply = api.patch(f"{FLAG}/player", json={"defaultVariant": "c"})
    assert reply.status_code == 400
    assert reply.json()["details"]["errors"][0]["pointer"] == "/flags/player/defaultVariant"
    missing = api.patch(f"{FLAG}/nothing", json={"state": "DISABLED"})
    assert missing.status_code == 404 and missing.json()["code"] == "FLAG_NOT_FOUND"
    assert api.delete(f"{FLAG}/nothing").status_code == 404
    assert api.get("/api/v1/environments/development/flagset").headers["etag"] == (
        '"development-r1"'
    )


def test_kill_disables_the_flag_and_is_audited_with_who_and_why(api: httpx.Client) -> None:
    put_set(api, "production")
    killed = api.post(
        "/api/v1/environments/production/flags/use_tus_upload/kill",
        headers={"Reelout-Change-Reason": "upload failures at 7%"},
    )
    assert killed.status_code == 200, killed.text
    assert killed.json()["state"] == "DISABLED"
    assert killed.headers["etag"] == '"production-r2"'
    document = api.get("/api/v1/environments/production/flagset").json()
    assert document["flags"]["use_tus_upload"]["state"] == "DISABLED"
    assert document["flags"]["player"]["state"] == "ENABLED"

    again = api.post("/api/v1/environments/production/flags/use_tus_upload/kill")
    assert again.status_code == 200 and again.headers["etag"] == '"production-r2"'

    entries = audit(api, action="kill")
    assert len(entries) == 1
    entry = entries[0]
    assert entry["environment"] == "production"
    assert entry["reason"] == "upload failures at 7%"
    assert entry["flag"] == "use_tus_upload" and entry["flags"] == ["use_tus_upload"]
    assert entry["diff"] == [
        {"op": "replace", "path": "/flags/use_tus_upload/state", "value": "DISABLED"}
    ]
    keys = api.get("/api/v1/keys").json()
    assert entry["actor"] in {key["name"] for key in keys}
    assert entry["actor_key_id"] in {key["id"] for key in keys}


def test_the_reason_can_come_as_a_query_parameter(api: httpx.Client) -> None:
    put_set(api, "preview")
    reply = api.post(
        "/api/v1/environments/preview/flags/player/kill", params={"reason": "bad build"}
    )
    assert reply.status_code == 200
    assert audit(api, action="kill")[0]["reason"] == "bad build"


def test_merge_patch_null_removes_a_member(api: httpx.Client) -> None:
    put_set(api, "development")
    reply = api.patch(
        f"{FLAG}/use_tus_upload",
        json={"targeting": None, "defaultVariant": "on"},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert reply.status_code == 200, reply.text
    assert "targeting" not in reply.json()
    assert reply.json()["defaultVariant"] == "on"


def test_a_stale_if_match_on_one_flag_gets_412(api: httpx.Client) -> None:
    put_set(api, "development")
    api.post(f"{FLAG}/player/kill")
    stale = api.patch(
        f"{FLAG}/player", json={"state": "ENABLED"}, headers={"If-Match": '"development-r1"'}
    )
    assert stale.status_code == 412 and stale.json()["code"] == "STALE_FLAG_SET"
    assert api.get(f"{FLAG}/player").json()["state"] == "DISABLED"


def test_a_body_over_the_limit_is_413(tmp_path: Path) -> None:
    with (
        serving(make_settings(tmp_path, flag_set_max_bytes=2048, seed_flags=False)) as server,
        server.client() as api,
    ):
        big = '{"flags": {}, "metadata": {"note": "' + "x" * 4096 + '"}}'
        reply = put_set(api, "development", big)
        assert reply.status_code == 413
        assert reply.json()["code"] == "FLAG_SET_TOO_LARGE"


def test_concurrent_edits_lose_nothing(api: httpx.Client, server: LiveServer) -> None:
    put_set(api, "production")
    flag = {"state": "ENABLED", "variants": {"on": True, "off": False}, "defaultVariant": "off"}

    def add(index: int) -> int:
        with server.client() as client:
            return client.put(
                f"/api/v1/environments/production/flags/f{index}", json=flag
            ).status_code

    with ThreadPoolExecutor(max_workers=6) as pool:
        codes = list(pool.map(add, range(12)))
    assert codes == [200] * 12
    current = api.get("/api/v1/environments/production/flagset")
    assert current.headers["etag"] == '"production-r13"'
    assert {f"f{i}" for i in range(12)} <= set(current.json()["flags"])
    revisions = api.get("/api/v1/environments/production/revisions").json()["revisions"]
    assert [r["revision"] for r in revisions] == list(range(13, 0, -1))


def test_killing_a_flag_that_is_already_off_makes_no_revision(api: httpx.Client) -> None:
    put_set(api, "preview", FLAG_SET.replace('"state": "ENABLED"', '"state": "DISABLED"'))
    reply = api.post("/api/v1/environments/preview/flags/player/kill")
    assert reply.status_code == 200 and reply.json()["state"] == "DISABLED"
    assert reply.headers["etag"] == '"preview-r1"'
    assert audit(api, action="kill") == []
