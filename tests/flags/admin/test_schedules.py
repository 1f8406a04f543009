"""Scheduled flag changes: checked when scheduled, applied once at their time by a job (a normal
revision with an audit entry), recorded as failed when they no longer fit, cancelable while pending."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from reelout.clock import ManualClock
from reelout.flags.governance import jobs as schedule_jobs
from reelout.flags.governance import schedules
from reelout.jobs import service as jobs
from reelout.jobs.registry import Registry
from reelout.tasks import build_registry
from tests.flags.admin.conftest import StartClocked, audit, put_set
from tests.support.jobs import run_jobs
from tests.support.live import LiveServer
from tests.support.waiting import wait_until

ENVS = "/api/v1/environments"
HOUR = 3600


@dataclass
class Clocked:
    """A live server whose time moves only when the test says so, and a worker for its jobs."""

    server: LiveServer
    api: httpx.Client
    clock: ManualClock

    def at(self, seconds: float) -> str:
        return (self.clock.now() + timedelta(seconds=seconds)).isoformat()

    def schedule(self, env: str = "development", **body: Any) -> httpx.Response:
        return self.api.post(f"{ENVS}/{env}/schedules", json=body)

    def run_due_jobs(self) -> int:
        """Run every due job with a worker that knows the flags domain's job kinds."""
        registry = Registry()
        schedule_jobs.register(registry)
        return run_jobs(self.server.runtime, registry=registry, tick=True)


@pytest.fixture
def start(start_clocked: StartClocked, clock: ManualClock) -> Callable[..., Clocked]:
    """`start(**settings)`: a live server on the test's database and clock, as a `Clocked`."""

    def start_one(**settings: object) -> Clocked:
        return Clocked(*start_clocked(**settings), clock)

    return start_one


@pytest.fixture
def live(start: Callable[..., Clocked]) -> Clocked:
    return start()


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text)


def flag_of(live: Clocked, key: str, env: str = "development") -> httpx.Response:
    return live.api.get(f"{ENVS}/{env}/flags/{key}")


def revisions(live: Clocked, env: str = "development") -> list[int]:
    reply = live.api.get(f"{ENVS}/{env}/revisions")
    return [r["revision"] for r in reply.json()["revisions"]]


# ---- applying ----------------------------------------------------------------------------------


def test_a_scheduled_kill_waits_for_its_time_then_is_a_normal_revision(live: Clocked) -> None:
    put_set(live.api, "development")
    me = audit(live.api)[0]["actor"]
    made = live.schedule(
        flag="player", action="kill", apply_at=live.at(HOUR), reason="end of the test"
    )
    assert made.status_code == 201, made.text
    schedule = made.json()
    assert schedule["status"] == "pending" and schedule["scheduled_by"] == me
    assert (schedule["flag"], schedule["action"], schedule["revision"]) == ("player", "kill", None)

    live.clock.advance(HOUR - 1)
    assert live.run_due_jobs() == 0
    assert flag_of(live, "player").json()["state"] == "ENABLED"

    live.clock.advance(1)
    assert live.run_due_jobs() == 1
    applied = live.api.get(f"{ENVS}/development/schedules/{schedule['id']}").json()
    assert applied["status"] == "applied" and applied["revision"] == 2
    assert moment(applied["applied_at"]) == live.clock.now()
    assert flag_of(live, "player").json()["state"] == "DISABLED"
    entry = audit(live.api)[0]
    assert (entry["action"], entry["flag"], entry["revision"]) == ("kill", "player", 2)
    assert entry["actor"] == me
    assert entry["reason"] == f"scheduled change #{schedule['id']}: end of the test"


def test_put_patch_and_delete_apply_in_time_order(live: Clocked) -> None:
    put_set(live.api, "development")
    new_flag = {"state": "ENABLED", "variants": {"on": True, "off": False}, "defaultVariant": "on"}
    put = live.schedule(
        flag="use_cache", action="put", apply_at=live.at(3 * HOUR), definition=new_flag
    )
    patch = live.schedule(
        flag="player", action="patch", apply_at=live.at(HOUR), patch={"defaultVariant": "b"}
    )
    delete = live.schedule(flag="use_tus_upload", action="delete", apply_at=live.at(2 * HOUR))
    assert [r.status_code for r in (put, patch, delete)] == [201, 201, 201]
    listed = live.api.get(f"{ENVS}/development/schedules").json()["schedules"]
    assert [s["action"] for s in listed] == ["patch", "delete", "put"]  # soonest first
    assert listed[2]["definition"] == new_flag and listed[0]["patch"] == {"defaultVariant": "b"}

    live.clock.advance(3 * HOUR)
    assert live.run_due_jobs() == 3
    document = live.api.get(f"{ENVS}/development/flagset").json()
    assert sorted(document["flags"]) == ["player", "use_cache"]
    assert document["flags"]["use_cache"] == new_flag
    assert document["flags"]["player"]["defaultVariant"] == "b"
    assert revisions(live) == [4, 3, 2, 1]
    assert [e["action"] for e in audit(live.api)] == ["put", "delete", "patch", "put"]
    done = live.api.get(f"{ENVS}/development/schedules", params={"status": "applied"}).json()
    assert [s["revision"] for s in done["schedules"]] == [2, 3, 4]


def test_the_embedded_worker_of_serve_applies_due_changes(
    start: Callable[..., Clocked],
) -> None:
    assert schedules.APPLY_JOB in build_registry().kinds
    live = start(embedded_worker=True, job_poll_seconds=0.05)
    put_set(live.api, "production")
    made = live.schedule("production", flag="player", action="kill", apply_at=live.at(60))
    assert made.status_code == 201, made.text
    live.clock.advance(60)

    def applied() -> bool:
        reply = live.api.get(f"{ENVS}/production/schedules/{made.json()['id']}")
        return bool(reply.json()["status"] == "applied")

    wait_until(applied, message="the embedded worker to apply the scheduled kill")
    assert flag_of(live, "player", "production").json()["state"] == "DISABLED"


def test_a_change_that_no_longer_fits_is_recorded_as_failed(live: Clocked) -> None:
    put_set(live.api, "development")
    made = live.schedule(
        flag="player", action="patch", apply_at=live.at(HOUR), patch={"defaultVariant": "b"}
    )
    assert made.status_code == 201, made.text
    assert live.api.delete(f"{ENVS}/development/flags/player").status_code == 204

    live.clock.advance(HOUR)
    assert live.run_due_jobs() == 1
    failed = live.api.get(f"{ENVS}/development/schedules/{made.json()['id']}").json()
    assert failed["status"] == "failed" and failed["revision"] is None
    assert failed["error"]["code"] == "FLAG_NOT_FOUND"
    assert "player" in failed["error"]["message"]
    assert revisions(live) == [2, 1]
    with live.server.runtime.db.read() as session:
        (job,) = jobs.list_jobs(session, kind=schedules.APPLY_JOB)
    assert job.state == jobs.DONE  # the worker handled it: no retries, no crash


def test_two_workers_racing_apply_a_change_once(live: Clocked) -> None:
    put_set(live.api, "development")
    made = live.schedule(
        flag="player", action="patch", apply_at=live.at(60), patch={"metadata": {"owner": "video"}}
    )
    schedule_id = made.json()["id"]
    live.clock.advance(60)
    rt, results = live.server.runtime, list[Any]()
    gate = threading.Barrier(4)

    def worker() -> None:
        gate.wait()
        results.append(schedules.apply(rt.db, rt.clock, schedule_id))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count("applied") == 1 and results.count(None) == 3
    assert revisions(live) == [2, 1]
    assert live.run_due_jobs() == 1  # its own job then finds nothing left to do
    assert revisions(live) == [2, 1]


# ---- checked when scheduled --------------------------------------------------------------------


def test_an_invalid_definition_is_refused_now_with_its_pointer(live: Clocked) -> None:
    put_set(live.api, "development")
    bad = {"state": "ENABLED", "variants": {"a": 1, "b": 2}, "defaultVariant": "c"}
    reply = live.schedule(flag="new", action="put", apply_at=live.at(HOUR), definition=bad)
    assert reply.status_code == 400 and reply.json()["code"] == "INVALID_FLAG_SET"
    pointers = [e["pointer"] for e in reply.json()["details"]["errors"]]
    assert pointers == ["/flags/new/defaultVariant"]

    patched = live.schedule(
        flag="player", action="patch", apply_at=live.at(HOUR), patch={"state": "MAYBE"}
    )
    assert patched.status_code == 400 and patched.json()["code"] == "INVALID_FLAG_SET"
    assert patched.json()["details"]["errors"][0]["pointer"].startswith("/flags/player")

    missing = live.schedule(flag="nope", action="kill", apply_at=live.at(HOUR))
    assert missing.status_code == 404 and missing.json()["code"] == "FLAG_NOT_FOUND"

    # the trial runs left nothing behind: no schedule, no revision, no audit entry
    assert live.api.get(f"{ENVS}/development/schedules").json()["schedules"] == []
    assert revisions(live) == [1] and len(audit(live.api)) == 1


def test_the_payload_must_fit_the_action(live: Clocked) -> None:
    put_set(live.api, "development")
    when = live.at(HOUR)
    no_definition = live.schedule(flag="player", action="put", apply_at=when)
    assert no_definition.status_code == 400
    assert no_definition.json()["code"] == "SCHEDULE_PAYLOAD_MISSING"
    no_patch = live.schedule(flag="player", action="patch", apply_at=when)
    assert no_patch.json()["code"] == "SCHEDULE_PAYLOAD_MISSING"
    extra = live.schedule(flag="player", action="kill", apply_at=when, patch={"state": "ENABLED"})
    assert extra.status_code == 400 and extra.json()["code"] == "UNEXPECTED_SCHEDULE_PAYLOAD"
    unknown = live.schedule(flag="player", action="explode", apply_at=when)
    assert unknown.status_code == 422 and unknown.json()["code"] == "INVALID_REQUEST"
    elsewhere = live.schedule("staging", flag="player", action="kill", apply_at=when)
    assert elsewhere.status_code == 404 and elsewhere.json()["code"] == "UNKNOWN_ENVIRONMENT"


def test_apply_at_must_be_in_the_future(live: Clocked) -> None:
    put_set(live.api, "development")
    for when in (live.at(-1), live.at(0)):
        reply = live.schedule(flag="player", action="kill", apply_at=when)
        assert reply.status_code == 400 and reply.json()["code"] == "APPLY_AT_IN_PAST"
        assert "not in the future" in reply.json()["message"]
    assert live.schedule(flag="player", action="kill", apply_at=live.at(1)).status_code == 201
    naive = (live.clock.now() + timedelta(hours=1)).replace(tzinfo=None).isoformat()
    as_utc = live.schedule(flag="player", action="kill", apply_at=naive).json()
    assert moment(as_utc["apply_at"]) == live.clock.now() + timedelta(hours=1)


def test_pending_changes_per_environment_are_limited(start: Callable[..., Clocked]) -> None:
    live = start(flag_max_pending_schedules=2)
    put_set(live.api, "development")
    put_set(live.api, "preview")
    first = live.schedule(flag="player", action="kill", apply_at=live.at(HOUR))
    assert live.schedule(flag="player", action="kill", apply_at=live.at(HOUR)).status_code == 201
    third = live.schedule(flag="player", action="kill", apply_at=live.at(HOUR))
    assert third.status_code == 409 and third.json()["code"] == "SCHEDULE_LIMIT_REACHED"
    assert "REELOUT_FLAG_MAX_PENDING_SCHEDULES=2" in third.json()["message"]
    other = live.schedule("preview", flag="player", action="kill", apply_at=live.at(HOUR))
    assert other.status_code == 201  # the limit is per environment

    live.api.delete(f"{ENVS}/development/schedules/{first.json()['id']}")
    again = live.schedule(flag="player", action="kill", apply_at=live.at(HOUR))
    assert again.status_code == 201  # canceled ones do not count


# ---- reading and canceling ---------------------------------------------------------------------


def test_a_pending_change_can_be_canceled_and_then_never_applies(live: Clocked) -> None:
    put_set(live.api, "development")
    me = audit(live.api)[0]["actor"]
    made = live.schedule(flag="player", action="kill", apply_at=live.at(HOUR)).json()
    assert (made["canceled_by"], made["canceled_by_key_id"], made["cancel_reason"]) == (None,) * 3
    url = f"{ENVS}/development/schedules/{made['id']}"
    live.clock.advance(60)
    canceled = live.api.delete(url, params={"reason": "  launch moved  "})
    assert canceled.status_code == 200, canceled.text
    body = canceled.json()
    assert body["status"] == "canceled"
    assert moment(body["canceled_at"]) == live.clock.now()
    assert (body["canceled_by"], body["cancel_reason"]) == (me, "launch moved")
    assert body["canceled_by_key_id"] == made["scheduled_by_key_id"]
    assert live.api.get(url).json()["canceled_by"] == me

    again = live.api.delete(url)
    assert again.status_code == 409 and again.json()["code"] == "SCHEDULE_NOT_PENDING"
    assert again.json()["details"] == {"status": "canceled"}
    live.clock.advance(HOUR)
    assert live.run_due_jobs() == 1
    assert live.api.get(url).json()["status"] == "canceled"
    assert flag_of(live, "player").json()["state"] == "ENABLED" and revisions(live) == [1]


def test_a_cancel_without_a_reason_records_who_and_a_too_long_reason_is_refused(
    live: Clocked,
) -> None:
    put_set(live.api, "development")
    made = live.schedule(flag="player", action="kill", apply_at=live.at(HOUR)).json()
    url = f"{ENVS}/development/schedules/{made['id']}"
    too_long = live.api.delete(url, params={"reason": "x" * 2001})
    assert too_long.status_code == 400 and too_long.json()["code"] == "REASON_TOO_LONG"
    assert live.api.get(url).json()["status"] == "pending"
    plain = live.api.delete(url).json()
    assert plain["status"] == "canceled" and plain["cancel_reason"] is None
    assert plain["canceled_by"] == made["scheduled_by"]


def test_an_applied_change_cannot_be_canceled(live: Clocked) -> None:
    put_set(live.api, "development")
    made = live.schedule(flag="player", action="kill", apply_at=live.at(60)).json()
    live.clock.advance(60)
    live.run_due_jobs()
    reply = live.api.delete(f"{ENVS}/development/schedules/{made['id']}")
    assert reply.status_code == 409 and reply.json()["details"] == {"status": "applied"}


def test_schedules_are_listed_by_status_and_found_only_in_their_environment(
    live: Clocked,
) -> None:
    put_set(live.api, "development")
    keep = live.schedule(flag="player", action="kill", apply_at=live.at(HOUR)).json()
    drop = live.schedule(flag="use_tus_upload", action="kill", apply_at=live.at(HOUR)).json()
    by_header = live.api.delete(
        f"{ENVS}/development/schedules/{drop['id']}",
        headers={"Reelout-Change-Reason": "not this one"},
    )
    assert by_header.json()["cancel_reason"] == "not this one"

    def ids(**query: str) -> list[int]:
        reply = live.api.get(f"{ENVS}/development/schedules", params=query)
        assert reply.status_code == 200, reply.text
        return [s["id"] for s in reply.json()["schedules"]]

    assert ids() == [keep["id"], drop["id"]]
    assert ids(status="pending") == [keep["id"]]
    assert ids(status="canceled") == [drop["id"]]
    assert ids(status="failed") == []
    bad = live.api.get(f"{ENVS}/development/schedules", params={"status": "later"})
    assert bad.status_code == 422
    elsewhere = live.api.get(f"{ENVS}/preview/schedules/{keep['id']}")
    assert elsewhere.status_code == 404 and elsewhere.json()["code"] == "SCHEDULE_NOT_FOUND"
    assert live.api.delete(f"{ENVS}/development/schedules/999").status_code == 404


def test_schedules_need_an_admin_key(live: Clocked) -> None:
    with live.server.client(token=None) as anonymous:
        assert anonymous.get(f"{ENVS}/development/schedules").status_code == 401
