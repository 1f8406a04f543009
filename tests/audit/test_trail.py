"""The audit trail: key and webhook changes recorded (API and CLI) with who, why and a JSON
Patch, and GET /api/v1/audit/all listing them with the flag audit log, filtered and paged."""

from __future__ import annotations

import getpass
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from reelout.app import AUDIT_SOURCES
from reelout.audit.schemas import Area
from reelout.audit.service import ChangeFilter, Target, list_changes, record
from reelout.auth.service import FIRST_START
from reelout.cli import app
from reelout.config import Settings
from reelout.runtime import Runtime
from tests.support.live import LiveServer, live_server_fixture
from tests.support.settings import ADMIN_TOKEN

server = live_server_fixture(per_database=True, webhook_allow_networks="127.0.0.0/8")
FLAGS = '{"flags": {"beta": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off"}}}'
ALL = "/api/v1/audit/all"


def changes(api: httpx.Client, **query: Any) -> list[dict[str, Any]]:
    reply = api.get(ALL, params=query)
    assert reply.status_code == 200, reply.text
    entries: list[dict[str, Any]] = reply.json()["entries"]
    return entries


def make_changes(api: httpx.Client) -> dict[str, str]:
    """A client key made and revoked, an endpoint made, rotated, tested and deleted, a flag set."""
    key = api.post(
        "/api/v1/keys", json={"scope": "client", "environment": "production", "name": "app"}
    )
    assert key.status_code == 201, key.text
    flags = api.put(
        "/api/v1/environments/production/flagset",
        content=FLAGS.encode(),
        headers={"Reelout-Change-Reason": "first flags"},
    )
    assert flags.status_code == 200, flags.text
    revoked = api.delete(
        f"/api/v1/keys/{key.json()['id']}", headers={"Reelout-Change-Reason": "leaked"}
    )
    assert revoked.status_code == 200, revoked.text
    hook = api.post("/api/v1/webhooks", json={"url": "http://127.0.0.1:9/hook"})
    assert hook.status_code == 201, hook.text
    hook_id = hook.json()["id"]
    assert api.post(f"/api/v1/webhooks/{hook_id}/rotate-secret").status_code == 200
    test = api.post(f"/api/v1/webhooks/{hook_id}/test")
    assert test.status_code == 202, test.text
    assert test.json()["event_type"] == "webhook.test" and test.json()["state"] == "pending"
    logged = api.get("/api/v1/webhooks/deliveries", params={"event_type": "webhook.test"})
    assert [d["id"] for d in logged.json()["deliveries"]] == [test.json()["id"]]
    gone = api.delete(f"/api/v1/webhooks/{hook_id}", headers={"Reelout-Change-Reason": "moved"})
    assert gone.status_code == 204
    return {"key": key.json()["id"], "secret": key.json()["key"], "hook": hook_id}


def test_every_change_is_listed_newest_first_with_who_why_and_the_patch(
    server: LiveServer,
) -> None:
    with server.client() as api:
        ids = make_changes(api)
        entries = changes(api)
    assert [e["action"] for e in entries] == [
        "webhook.deleted",
        "webhook.tested",
        "webhook.secret_rotated",
        "webhook.created",
        "key.revoked",
        "flag.put",
        "key.created",
        "key.created",  # the first start's admin key
    ]
    assert {e["actor"] for e in entries[:-1]} == {"bootstrap"}
    assert entries[-1]["actor"] == "first start"
    deleted, tested, rotated, created, revoked, flag, made = entries[:7]
    assert deleted["reason"] == "moved" and deleted["target_id"] == ids["hook"]
    assert {op["op"] for op in deleted["patch"]} == {"remove"}
    added = {op["path"]: op["value"] for op in created["patch"] if op["op"] == "add"}
    assert added == {"/url": "http://127.0.0.1:9/hook", "/events": ["*"], "/description": ""}
    assert rotated["patch"][0]["path"] == "/previous_secret_expires_at"
    assert tested["patch"] is None and tested["area"] == "webhooks"
    assert revoked["reason"] == "leaked" and revoked["environment"] == "production"
    assert [op["path"] for op in revoked["patch"]] == ["/revoked_at"]
    assert flag["reason"] == "first flags" and flag["area"] == "flags"
    assert flag["target_kind"] == "environment" and flag["target_id"] == "production"
    assert any(op["path"].startswith("/flags") for op in flag["patch"])
    key_doc = {op["path"]: op.get("value") for op in made["patch"]}
    assert key_doc["/name"] == "app" and key_doc["/scope"] == "client"
    assert "/key" not in key_doc and ids["secret"] not in json.dumps(entries)
    assert made["target_id"] == ids["key"] and made["id"].startswith("audit-")
    assert flag["id"].startswith("flags-")


def test_filters_and_cursor_paging(server: LiveServer) -> None:
    with server.client() as api:
        ids = make_changes(api)
        everything = changes(api)
        assert [e["action"] for e in changes(api, area="keys")] == [
            "key.revoked", "key.created", "key.created",
        ]  # fmt: skip
        assert [e["action"] for e in changes(api, target=ids["key"])] == [
            "key.revoked", "key.created",
        ]  # fmt: skip
        assert [e["action"] for e in changes(api, env="production")] == [
            "key.revoked", "flag.put", "key.created",
        ]  # fmt: skip
        assert [e["action"] for e in changes(api, target="beta")] == ["flag.put"]
        assert len(changes(api, actor="bootstrap")) == len(everything) - 1
        assert len(changes(api, actor=everything[0]["actor_key_id"])) == len(everything) - 1
        assert changes(api, actor="nobody") == []
        assert [e["action"] for e in changes(api, action="webhook.tested")] == ["webhook.tested"]
        pivot = everything[3]["at"]
        assert all(e["at"] >= pivot for e in changes(api, since=pivot))
        assert all(e["at"] < pivot for e in changes(api, until=pivot))

        seen: list[str] = []
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 3} | ({"cursor": cursor} if cursor else {})
            page = api.get(ALL, params=params).json()
            seen += [e["id"] for e in page["entries"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == [e["id"] for e in everything]
        assert api.get(ALL, params={"cursor": "nonsense"}).json()["code"] == "INVALID_CURSOR"
        assert api.get(ALL, params={"area": "nope"}).status_code == 422
        # the flag audit log's own list keeps its contract: flag entries only
        assert [e["action"] for e in api.get("/api/v1/audit").json()["entries"]] == ["put"]


def test_only_admin_keys_read_the_trail(server: LiveServer) -> None:
    with server.client() as api:
        body = {"scope": "server", "environment": "production", "name": "backend"}
        key = api.post("/api/v1/keys", json=body).json()["key"]
    with server.client(token=key) as other:
        assert other.get(ALL).status_code == 403
    with server.client(token=None) as nobody:
        assert nobody.get(ALL).status_code == 401


def test_the_cli_records_key_changes_as_its_os_user(tmp_path: Path) -> None:
    env = {
        "REELOUT_DATA_DIR": str(tmp_path / "data"),
        "REELOUT_ADMIN_TOKEN": ADMIN_TOKEN,
        "COLUMNS": "200",
    }
    runner = CliRunner()
    made = runner.invoke(
        app, ["keys", "create", "--scope", "client", "--env", "production"], env=env
    )
    assert made.exit_code == 0, made.output
    listed = runner.invoke(app, ["keys", "list", "--json"], env=env)
    key_id = next(k["id"] for k in json.loads(listed.output) if k["scope"] == "client")
    revoked = runner.invoke(app, ["keys", "revoke", key_id, "--reason", "rotation"], env=env)
    assert revoked.exit_code == 0, revoked.output

    rt = Runtime.from_settings(Settings(data_dir=tmp_path / "data", admin_token=ADMIN_TOKEN))
    try:
        with rt.db.read() as session:
            page = list_changes(session, AUDIT_SOURCES, ChangeFilter(area=Area.keys, target=key_id))
    finally:
        rt.db.dispose()
    assert [(e.action, e.actor, e.reason) for e in page.entries] == [
        ("key.revoked", f"cli:{getpass.getuser()}", "rotation"),
        ("key.created", f"cli:{getpass.getuser()}", None),
    ]
    assert page.entries[0].at >= page.entries[1].at - timedelta(seconds=1)


def test_an_action_outside_the_known_areas_is_refused(tmp_path: Path) -> None:
    rt = Runtime.from_settings(Settings(data_dir=tmp_path / "data", admin_token=ADMIN_TOKEN))
    try:
        with pytest.raises(ValueError, match="no audit area"), rt.db.session() as session:
            record(session, rt.clock, FIRST_START, "nothing.done", Target("x", "y"))
    finally:
        rt.db.dispose()


def test_video_changes_are_recorded_and_a_refused_one_is_not(server: LiveServer) -> None:
    with server.client() as api:
        made = api.post("/api/v1/videos", json={"meta": {"title": "x"}, "expires_in": 600})
        assert made.status_code == 201, made.text
        uid = made.json()["uid"]
        busy = api.post(f"/api/v1/videos/{uid}/reprocess")  # still uploading
        assert busy.status_code == 409 and busy.json()["code"] == "VIDEO_BUSY"
        assert changes(api, area="videos") == []
        gone = api.delete(f"/api/v1/videos/{uid}", headers={"Reelout-Change-Reason": "a test"})
        assert gone.status_code == 204
        (entry,) = changes(api, area="videos")
    assert (entry["action"], entry["target_id"], entry["reason"]) == (
        "video.deleted",
        uid,
        "a test",
    )
    assert [op["op"] for op in entry["patch"]] == ["remove", "remove"]
