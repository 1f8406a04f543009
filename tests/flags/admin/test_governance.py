"""Governance: promote with a dry-run diff, revisions and revert, the audit log and its filters."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import httpx

from reelout.clock import ManualClock
from tests.flags.admin.conftest import FLAG_SET, audit, put_set
from tests.support.live import serving
from tests.support.settings import make_settings

ENVS = "/api/v1/environments"


def test_promote_dry_run_shows_the_diff_and_changes_nothing_then_applies(
    api: httpx.Client,
) -> None:
    put_set(api, "preview")
    api.patch(f"{ENVS}/preview/flags/player", json={"defaultVariant": "b"})
    put_set(api, "production")
    api.put(
        f"{ENVS}/production/flags/old_flag",
        json={"state": "ENABLED", "variants": {"on": True}, "defaultVariant": "on"},
    )
    before = api.get(f"{ENVS}/production/flagset")

    dry = api.post(f"{ENVS}/preview/promote/production", params={"dry_run": "true"})
    assert dry.status_code == 200, dry.text
    plan = dry.json()
    assert plan["applied"] is False
    assert plan["source_revision"] == 2 and plan["target_revision"] == 2
    assert plan["summary"] == {"added": [], "removed": ["old_flag"], "changed": ["player"]}
    assert {"op": "remove", "path": "/flags/old_flag"} in plan["patch"]
    assert {"op": "replace", "path": "/flags/player/defaultVariant", "value": "b"} in plan["patch"]
    after = api.get(f"{ENVS}/production/flagset")
    assert after.content == before.content and after.headers["etag"] == before.headers["etag"]

    done = api.post(f"{ENVS}/preview/promote/production", params={"reason": "preview is green"})
    assert done.status_code == 200, done.text
    assert done.json()["applied"] is True and done.json()["target_revision"] == 3
    promoted = api.get(f"{ENVS}/production/flagset")
    assert promoted.content == api.get(f"{ENVS}/preview/flagset").content
    entry = audit(api, action="promote")[0]
    assert (entry["environment"], entry["source_environment"], entry["source_revision"]) == (
        "production",
        "preview",
        2,
    )
    assert entry["reason"] == "preview is green"
    assert entry["flags"] == ["old_flag", "player"]

    nothing = api.post(f"{ENVS}/preview/promote/production")
    assert nothing.json()["applied"] is False and nothing.json()["patch"] == []


def test_promote_to_itself_is_refused(api: httpx.Client) -> None:
    reply = api.post(f"{ENVS}/preview/promote/preview")
    assert reply.status_code == 400 and reply.json()["code"] == "SAME_ENVIRONMENT"


def test_revert_makes_a_new_revision_equal_to_an_old_one(api: httpx.Client) -> None:
    put_set(api, "development")
    api.post(f"{ENVS}/development/flags/player/kill")
    api.delete(f"{ENVS}/development/flags/use_tus_upload")
    revisions = api.get(f"{ENVS}/development/revisions").json()["revisions"]
    assert [r["revision"] for r in revisions] == [3, 2, 1]
    assert api.get(f"{ENVS}/development/revisions/1").content == FLAG_SET.encode()

    reverted = api.post(f"{ENVS}/development/revert/1", headers={"Reelout-Change-Reason": "undo"})
    assert reverted.status_code == 200, reverted.text
    assert reverted.json()["revision"] == 4
    current = api.get(f"{ENVS}/development/flagset")
    assert current.content == FLAG_SET.encode()
    assert current.headers["etag"] == '"development-r4"'
    entry = audit(api, action="revert")[0]
    assert entry["source_revision"] == 1 and entry["reason"] == "undo"
    assert entry["flags"] == ["player", "use_tus_upload"]

    missing = api.post(f"{ENVS}/development/revert/99")
    assert missing.status_code == 404 and missing.json()["code"] == "REVISION_NOT_FOUND"


def test_audit_filters_and_pages(tmp_path: Path) -> None:
    clock = ManualClock()
    with (
        serving(make_settings(tmp_path, seed_flags=False), clock) as server,
        server.client() as api,
    ):
        put_set(api, "development")
        clock.advance(60)
        middle = clock.now()
        api.post(f"{ENVS}/development/flags/player/kill")
        clock.advance(60)
        put_set(api, "preview")
        api.patch(f"{ENVS}/preview/flags/use_tus_upload", json={"state": "DISABLED"})

        assert len(audit(api)) == 4
        assert [e["action"] for e in audit(api, env="preview")] == ["patch", "put"]
        assert [e["action"] for e in audit(api, flag="player")] == ["put", "kill", "put"]
        assert [e["environment"] for e in audit(api, flag="use_tus_upload")] == [
            "preview",
            "preview",
            "development",
        ]
        assert audit(api, actor="nobody") == []
        assert len(audit(api, actor=audit(api)[0]["actor"])) == 4
        since = audit(api, since=middle.isoformat())
        assert [e["action"] for e in since] == ["patch", "put", "kill"]
        until = audit(api, until=(middle + timedelta(seconds=1)).isoformat())
        assert [e["action"] for e in until] == ["kill", "put"]

        first = api.get("/api/v1/audit", params={"limit": 3}).json()
        assert len(first["entries"]) == 3 and first["next_cursor"]
        rest = api.get("/api/v1/audit", params={"limit": 3, "cursor": first["next_cursor"]}).json()
        assert len(rest["entries"]) == 1 and rest["next_cursor"] is None
        ids = [e["id"] for e in first["entries"] + rest["entries"]]
        assert ids == sorted(ids, reverse=True)
        bad = api.get("/api/v1/audit", params={"cursor": "nonsense"})
        assert bad.status_code == 400
