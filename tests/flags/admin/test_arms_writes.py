"""Writing a staged rollout's arms and its rollback: audited revisions, and a rollback that reaches
connected apps live like a kill does."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from reelout.auth.schemas import Scope
from reelout.auth.service import Principal
from reelout.clock import ManualClock
from reelout.errors import ReeloutError
from reelout.flags.admin import service
from reelout.flags.admin.arms import Arms
from reelout.flags.admin.schemas import AuditAction
from reelout.runtime import Runtime
from tests.flags.test_streams import bulk, by_key, new_key, stream_url
from tests.support.live import StartLive
from tests.support.settings import make_settings, start_runtime
from tests.support.sse import EventStream

ENV = "production"
FLAGS: dict[str, Any] = {
    "flags": {
        "use_tus_upload": {
            "state": "ENABLED",
            "variants": {"on": True, "off": False},
            "defaultVariant": "off",
        },
        "other": {
            "state": "ENABLED",
            "variants": {"on": True, "off": False},
            "defaultVariant": "off",
        },
    }
}
ALICE = Principal(key_id="k_alice", name="alice", scope=Scope.admin, environment=None)


@pytest.fixture
def rt(tmp_path: Path, clock: ManualClock) -> Runtime:
    runtime = start_runtime(make_settings(tmp_path, seed_flags=False), clock)
    with runtime.db.session() as session:
        body = json.dumps(FLAGS).encode()
        service.put_flag_set(session, clock, ENV, body, service.Edit(ALICE, "the flags"))
    return runtime


def test_each_stage_is_one_audited_revision(rt: Runtime, clock: ManualClock) -> None:
    entries = []
    for percent in (10, 25, 25, 50):
        with rt.db.session() as session:
            edit = service.Edit(ALICE, f"rollout 1: stage {percent}%")
            split = Arms("on", "off", percent)
            written, entry = service.rollout_arms(
                session, clock, ENV, "use_tus_upload", split, edit
            )
            entries.append((written.changed, entry.action if entry else None))
    done = (True, "rollout_arms")
    assert entries == [done, done, (False, None), done], "an unchanged stage writes nothing"
    with rt.db.read() as session:
        page = service.list_audit(session, service.AuditFilter(flag="use_tus_upload"))
        latest = service.latest_audit_of(session, ENV, "use_tus_upload")
        flag = service.get_flag(session, ENV, "use_tus_upload")[1]
    assert [e.action for e in page.entries] == [AuditAction.rollout_arms] * 3 + [AuditAction.put]
    assert [e.reason for e in page.entries][:3] == [
        "rollout 1: stage 50%",
        "rollout 1: stage 25%",
        "rollout 1: stage 10%",
    ]
    assert latest is not None and latest.id == page.entries[0].id
    assert flag["targeting"] == {"fractional": [["on", 50], ["off~excluded", 0], ["off", 50]]}


def test_a_refused_arms_write_stores_nothing(rt: Runtime, clock: ManualClock) -> None:
    with pytest.raises(ReeloutError) as refused, rt.db.session() as session:
        service.rollout_arms(
            session, clock, ENV, "use_tus_upload", Arms("on", "maybe", 10), service.Edit(ALICE)
        )
    assert refused.value.code == "UNKNOWN_VARIANT"
    with rt.db.read() as session:
        assert service.current(session, ENV).revision == 1


def test_another_flags_writes_are_not_this_flags_latest_entry(
    rt: Runtime, clock: ManualClock
) -> None:
    with rt.db.session() as session:
        _, mine = service.rollout_arms(
            session, clock, ENV, "use_tus_upload", Arms("on", "off", 10), service.Edit(ALICE)
        )
        service.kill(session, clock, ENV, "other", service.Edit(ALICE))
    with rt.db.read() as session:
        latest = service.latest_audit_of(session, ENV, "use_tus_upload")
    assert mine is not None and latest is not None and latest.id == mine.id


def test_a_rollback_reaches_a_connected_app_at_once(
    live_servers: StartLive, database_url: str
) -> None:
    server = live_servers(
        database_url=database_url, flag_change_poll_seconds=0.05, seed_flags=False
    )
    rt = server.runtime
    with server.client() as admin:
        assert admin.put(f"/api/v1/environments/{ENV}/flagset", json=FLAGS).status_code == 200
    with rt.db.session() as session:
        edit = service.Edit(ALICE, "rollout 1: stage 100%")
        split = Arms("on", "off", 100)
        service.rollout_arms(session, rt.clock, ENV, "use_tus_upload", split, edit)
    with server.client(token=new_key(server)) as app:
        first = bulk(app)
        assert by_key(first)["use_tus_upload"]["variant"] == "on"
        with EventStream(httpx.Client(base_url=server.url), stream_url(first)) as events:
            events.next()  # the greeting
            with rt.db.session() as session:
                reason = "rollout 1 rolled back: crash_rate harm proven"
                written, entry = service.rollback_to_control(
                    session, rt.clock, ENV, "use_tus_upload", split, service.Edit(ALICE, reason)
                )
            change = events.next_change()
        assert change.json()["etag"] == f"{ENV}-r{written.revision}"
        after = by_key(bulk(app))["use_tus_upload"]
    assert (after["variant"], after["value"], after["reason"]) == ("off", False, "STATIC")
    assert entry is not None and (entry.action, entry.reason) == ("rollback", reason)
