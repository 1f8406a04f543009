"""The rollouts API over real HTTP: create from a JSON plan, commands, refusals in words, the log,
and a rollback that connected apps hear at once."""

from __future__ import annotations

from typing import Any

import httpx
import yaml

from tests.flags.test_streams import bulk, by_key, new_key, stream_url
from tests.rollouts.conftest import API, FLAG, PLAN
from tests.support.live import LiveServer
from tests.support.sse import EventStream


def ok(reply: httpx.Response, status: int = 200) -> Any:
    assert reply.status_code == status, reply.text
    return reply.json()


def test_create_start_and_read_a_rollout(api: httpx.Client) -> None:
    made = ok(api.post(API, json=PLAN), 201)
    assert (made["state"], made["percent"], made["plan"]) == ("pending", 10, PLAN)
    rid = made["id"]
    started = ok(api.post(f"{API}/{rid}/start"))
    assert (started["state"], started["version"]) == ("running", 2)
    assert started["allowed"] == ["pause", "promote", "approve", "abort", "rollback", "dismiss"]
    flag = ok(api.get(f"/api/v1/environments/production/flags/{FLAG}"))
    assert flag["targeting"]["fractional"][0] == [f"on~r{rid}", 10]
    assert started["served_as"] == {"treatment": f"on~r{rid}", "control": f"off~r{rid}",
                                    "excluded": "off~excluded"}  # fmt: skip

    listed = ok(api.get(API, params={"state": ["running", "paused"]}))
    assert [r["id"] for r in listed["rollouts"]] == [rid]
    assert ok(api.get(API, params={"state": "completed"}))["rollouts"] == []
    assert ok(api.get(f"{API}/{rid}")) == started

    promoted = ok(api.post(f"{API}/{rid}/promote", json={"reason": "looks good", "version": 2}))
    assert promoted["percent"] == 25
    page = ok(api.get(f"{API}/{rid}/log", params={"limit": 2}))
    assert [e["what"] for e in page["entries"]] == ["create", "start"] and page["more"]
    rest = ok(api.get(f"{API}/{rid}/log", params={"cursor": page["next_cursor"]}))
    (entry,) = rest["entries"]
    assert (entry["kind"], entry["who"], entry["what"], entry["reason"]) == (
        "command",
        "bootstrap",  # the suite's admin token's key
        "promote",
        "looks good",
    )


def test_a_yaml_plan_and_the_seed_template(api: httpx.Client) -> None:
    text = yaml.safe_dump(PLAN)
    made = ok(api.post(API, content=text, headers={"Content-Type": "application/yaml"}), 201)
    assert made["plan"]["stages"][3]["monitor_only"] is True
    assert made["plan"]["health"]["srm"]["p_threshold"] == 0.001, "defaults written out"
    ok(api.post(f"{API}/{made['id']}/abort"))
    body = {"flag": FLAG, "environment": "production", "treatment": "on", "control": "off"}
    seeded = ok(api.post(f"{API}/from-template", json=body), 201)
    assert [s["percent"] for s in seeded["plan"]["stages"]] == [10, 25, 50, 100]
    assert seeded["plan"]["control"]["variation"] == "off"
    assert ok(api.post(f"{API}/{seeded['id']}/start"))["percent"] == 10
    broken = api.post(API, content="rollout: [}", headers={"Content-Type": "application/yaml"})
    assert (broken.status_code, broken.json()["code"]) == (400, "INVALID_PLAN")


def test_refusals_are_in_words(api: httpx.Client) -> None:
    rid = ok(api.post(API, json=PLAN), 201)["id"]
    cases = [
        (api.post(API, json=PLAN), 409, "ROLLOUT_EXISTS"),
        (api.post(API, json={"rollout": {"flag": FLAG}}), 400, "INVALID_PLAN"),
        (api.post(f"{API}/{rid}/pause"), 409, "ROLLOUT_STATE_CONFLICT"),
        (api.post(f"{API}/{rid}/advance"), 400, "NOT_AN_OPERATOR_COMMAND"),  # the controller's
        (api.post(f"{API}/{rid}/nonsense"), 422, "INVALID_REQUEST"),
        (api.post(f"{API}/{rid}/dismiss", json={"metric": "error_rate"}), 400, "REASON_REQUIRED"),
        (api.post(f"{API}/{rid}/start", json={"version": 7}), 412, "STALE_ROLLOUT"),
        (api.post(f"{API}/{rid + 1}/start"), 404, "ROLLOUT_NOT_FOUND"),
        (api.get(f"{API}/{rid}/log", params={"cursor": "x"}), 400, "INVALID_CURSOR"),
    ]
    for reply, status, code in cases:
        assert (reply.status_code, reply.json()["code"]) == (status, code), reply.text
    pending = ok(api.get(f"{API}/{rid}"))
    assert pending["state"] == "pending" and pending["allowed"] == ["start", "abort"]
    assert "is pending: pause is not allowed; it allows start, abort" in cases[2][0].text
    with httpx.Client(base_url=str(api.base_url)) as anonymous:
        assert anonymous.get(API).status_code == 401


def test_a_rollback_reaches_connected_apps(api: httpx.Client, server: LiveServer) -> None:
    rid = ok(api.post(API, json=PLAN), 201)["id"]
    ok(api.post(f"{API}/{rid}/start"))
    with server.client(token=new_key(server)) as app:
        first = bulk(app)
        with EventStream(httpx.Client(base_url=server.url), stream_url(first)) as events:
            events.next()  # the greeting
            rolled = api.post(
                f"{API}/{rid}/rollback", headers={"Reelout-Change-Reason": "upload errors"}
            )
            assert ok(rolled)["state"] == "rolled_back"
            assert events.next_change().json()["type"] == "refetchEvaluation"
        after = by_key(bulk(app))[FLAG]
    assert (after["variant"], after["value"]) == ("off", False)
    (last,) = ok(api.get(f"{API}/{rid}/log"))["entries"][-1:]
    assert (last["what"], last["reason"]) == ("rollback", "upload errors")


def test_the_log_reads_newest_first_too(api: httpx.Client) -> None:
    rid = ok(api.post(API, json=PLAN), 201)["id"]
    ok(api.post(f"{API}/{rid}/start"))
    ok(api.post(f"{API}/{rid}/pause"))
    newest = ok(api.get(f"{API}/{rid}/log", params={"order": "newest", "limit": 2}))
    assert [e["what"] for e in newest["entries"]] == ["pause", "start"] and newest["more"]
    back = {"order": "newest", "cursor": newest["next_cursor"]}
    rest = ok(api.get(f"{API}/{rid}/log", params=back))
    assert [e["what"] for e in rest["entries"]] == ["create"] and not rest["more"]
    assert ok(api.get(f"{API}/{rid}/log", params=back | {"kind": "decision"}))["entries"] == []
    refused = api.get(f"{API}/{rid}/log", params={"order": "sideways"})
    assert refused.status_code == 422 and refused.json()["code"] == "INVALID_REQUEST"
