"""What a rollback does beyond the flag, over real HTTP on an injected clock: it freezes the
evidence on the rollout, fires the page alert `rollout-rolled-back` through the alerts'
evaluator and routing (signed to a real webhook receiver), and tells the plan's `notify`
targets (a signed webhook and a Slack message); a pause and a completion tell them too."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from reelout.alerts.service import vetoes
from reelout.clock import ManualClock
from reelout.rollouts import service
from reelout.rollouts.decide import ArmData
from reelout.runtime import Runtime
from reelout.webhooks.signing import verify
from tests.rollouts.conftest import API, ENV, FLAG, FLAGS, PLAN
from tests.rollouts.test_decide import arm, rate
from tests.rollouts.test_service import served
from tests.support.jobs import run_jobs
from tests.support.live import LiveServer, StartLive
from tests.support.ticks import decide_on
from tests.telemetry.test_prometheus import scrape, value
from tests.web.test_login import login
from tests.webhooks.receiver import Received, Receiver

LOOPBACK = "127.0.0.0/8"
NOTIFY = ["webhook:deploy-bot", "slack:#video-rollouts"]
NOTIFIED = {**PLAN["rollout"], "notify": NOTIFY}
NOTIFICATIONS = "reelout_alert_notifications_total"


@pytest.fixture
def receiver(clock: ManualClock) -> Iterator[Receiver]:
    with Receiver(clock) as rec:
        yield rec


@pytest.fixture
def server(live_servers: StartLive, clock: ManualClock) -> LiveServer:
    live = live_servers(clock=clock, seed_flags=False, webhook_allow_networks=LOOPBACK)
    with live.client() as admin:
        reply = admin.put(f"/api/v1/environments/{ENV}/flagset", json=FLAGS)
        assert reply.status_code in (200, 201), reply.text
    return live


def ok(reply: httpx.Response, status: int = 200) -> Any:
    assert reply.status_code == status, reply.text
    return reply.json()


@pytest.fixture
def hooks(server: LiveServer, receiver: Receiver) -> dict[str, str]:
    """Three receivers: the on-call pager takes page alerts; the rollout's own targets (a
    webhook and a Slack channel) take no alert, only what the plan sends them. Notifications
    speak at once (group_wait 0s)."""
    secrets = {}
    with server.client() as api:
        for rid, kind, matchers in (
            ("on-call", "webhook", {"severity": "page"}),
            ("deploy-bot", "webhook", {"team": "deploy"}),
            ("video-rollouts", "slack", {"team": "video"}),
        ):
            url = receiver.url(f"/{rid}")
            made = {"id": rid, "kind": kind, "url": url, "matchers": matchers}
            made = ok(api.post("/api/v1/alerts/receivers", json=made), 201)
            secrets[rid] = made.get("secret") or ""
        ok(api.put("/api/v1/alerts/routing", json={"group_wait": "0s", "group_interval": "1m"}))
    return secrets


def started(api: httpx.Client, plan: dict[str, Any] | None = None) -> int:
    made = ok(api.post(API, json={"rollout": plan or NOTIFIED}), 201)
    ok(api.post(f"{API}/{made['id']}/start"))
    return int(made["id"])


def tick(
    rt: Runtime, rollout: int, treatment: ArmData, control: ArmData, **seen: Any
) -> service.Recorded:
    """One controller tick on given evidence (`ticks.decide_on`)."""
    return decide_on(rt, rt.clock, rollout, treatment, control, **seen)


N = 12_000
HARMFUL = (arm(N, error_rate=rate(N // 20, N)), arm(N, error_rate=rate(N // 50, N)))  # 5% vs 2%
HEALTHY = (arm(N, error_rate=rate(N // 50, N)), arm(N, error_rate=rate(N // 50, N)))


def by_path(receiver: Receiver) -> dict[str, list[Received]]:
    found: dict[str, list[Received]] = {}
    for request in receiver.requests:
        found.setdefault(request.path, []).append(request)
    return found


def signed_body(request: Received, secret: str) -> dict[str, Any]:
    assert verify(secret, request.signature, request.body, now=request.at)
    assert not verify(secret, request.signature, request.body + b" ", now=request.at)
    loaded: dict[str, Any] = json.loads(request.body)
    assert loaded["id"] == request.event_id
    assert request.headers["reelout-event-type"] == loaded["type"]
    return loaded


def test_a_rollback_decision_freezes_its_evidence_pages_and_tells_the_plans_targets(
    server: LiveServer, clock: ManualClock, receiver: Receiver, hooks: dict[str, str]
) -> None:
    rt = server.runtime
    with server.client() as api:
        rid = started(api)
        clock.advance(60)
        recorded = tick(rt, rid, *HARMFUL)
        assert recorded.applied and recorded.rollout.state == "rolled_back"
        run_jobs(rt, tick=True)
        rollout = ok(api.get(f"{API}/{rid}"))
        alerts = ok(api.get("/api/v1/alerts", params={"state": "firing"}))["alerts"]

    assert served(rt) == {"off": 400}, "the control for everyone"
    frozen = rollout["frozen_evidence"]
    decision = frozen["decision"]
    assert decision == rollout["last_decision"]
    assert decision["decision"] == "rollback"
    error_rate = decision["per_metric"]["error_rate"]
    assert error_rate["state"] == "fail" and error_rate["interval"][0] > 0
    assert (error_rate["n_treatment"], error_rate["n_control"]) == (N, N)
    assert (frozen["cause"], frozen["who"], frozen["reason_class"]) == (
        "decision", "rollout-controller", "guardrail")  # fmt: skip
    assert frozen["reason"].startswith('guardrail "error_rate" FAIL')
    assert (frozen["stage"], frozen["percent"]) == (0, 10)

    [alert] = alerts
    labels = {"environment": ENV, "flag": FLAG, "rollout": str(rid), "reason": "guardrail",
              "alertname": "rollout-rolled-back", "severity": "page"}  # fmt: skip
    assert alert["rule"] == "rollout-rolled-back" and alert["labels"] == labels

    got = by_path(receiver)
    assert set(got) == {"/on-call", "/deploy-bot", "/video-rollouts"}
    [page] = got["/on-call"]
    paged = signed_body(page, hooks["on-call"])
    assert paged["type"] == "alert.notification" and paged["data"]["status"] == "firing"
    [paged_alert] = paged["data"]["alerts"]
    assert paged_alert["labels"] == labels
    assert f"rollout {rid} of {FLAG} in {ENV} was rolled back" in (
        paged_alert["annotations"]["summary"])  # fmt: skip

    [told] = got["/deploy-bot"]
    note = signed_body(told, hooks["deploy-bot"])
    assert note["type"] == "rollout.rolled_back"
    data = note["data"]
    served_as = {"treatment": f"on~r{rid}", "control": f"off~r{rid}", "excluded": "off~excluded"}
    assert data["rollout"] == {"id": rid, "flag": FLAG, "environment": ENV, "treatment": "on",
                               "control": "off", "served_as": served_as, "state": "rolled_back",
                               "stage": 0, "percent": 10}  # fmt: skip
    assert data["who"] == "rollout-controller" and data["decision"] == decision
    [slack] = got["/video-rollouts"]
    assert "reelout-signature" not in slack.headers
    message = json.loads(slack.body)
    assert message["blocks"][0]["text"]["text"].startswith(f"[ROLLED BACK] rollout {rid}")
    evidence = [b["text"]["text"] for b in message["blocks"] if b["type"] == "section"]
    assert any('guardrail "error_rate" FAIL' in text for text in evidence)
    assert f"`on` (served as `on~r{rid}`) (treatment)" in evidence[1]
    counted = scrape(server)  # the messages are counted with the alerts' notifications
    for receiver_id in ("deploy-bot", "video-rollouts"):
        assert value(counted, NOTIFICATIONS, receiver=receiver_id, event="rollout.rolled_back",
                     status="rolled_back") == 1  # fmt: skip


def test_the_frozen_evidence_never_changes_and_the_alert_resolves_after_its_window(
    server: LiveServer, clock: ManualClock, receiver: Receiver, hooks: dict[str, str]
) -> None:
    rt = server.runtime
    with server.client() as api:
        rid = started(api)
        tick(rt, rid, *HARMFUL)
        run_jobs(rt, tick=True)
        frozen = ok(api.get(f"{API}/{rid}"))["frozen_evidence"]
        clock.advance(60)
        late = tick(rt, rid, *HEALTHY)  # another worker's tick, on newer evidence
        refused = api.post(f"{API}/{rid}/rollback", json={"reason": "again"})
        assert refused.status_code == 409
        assert ok(api.get(f"{API}/{rid}"))["frozen_evidence"] == frozen
        assert not late.applied
        clock.advance(3600)
        run_jobs(rt, tick=True)
        assert ok(api.get("/api/v1/alerts", params={"state": "firing"}))["alerts"] == []
    statuses = [json.loads(r.body)["data"]["status"] for r in by_path(receiver)["/on-call"]]
    assert statuses == ["firing", "resolved"]


def test_an_operators_rollback_freezes_the_last_decision_and_says_who(
    server: LiveServer, clock: ManualClock, receiver: Receiver, hooks: dict[str, str]
) -> None:
    rt = server.runtime
    with server.client() as api:
        rid = started(api)
        held = tick(rt, rid, *HEALTHY)
        assert held.applied and held.rollout.state == "running"
        clock.advance(60)
        ok(api.post(f"{API}/{rid}/rollback", json={"reason": "support calls about uploads"}))
        clock.advance(1)
        run_jobs(rt, tick=True)
        rollout = ok(api.get(f"{API}/{rid}"))
        [alert] = ok(api.get("/api/v1/alerts", params={"state": "firing"}))["alerts"]
    frozen = rollout["frozen_evidence"]
    assert (frozen["cause"], frozen["who"], frozen["reason_class"]) == (
        "command", "bootstrap", "command")  # fmt: skip
    assert frozen["reason"] == "support calls about uploads"
    assert (
        frozen["decision"] == held.rollout.last_decision
        and frozen["decision"]["decision"] == "hold"
    )
    assert alert["labels"]["reason"] == "command"
    with rt.db.read() as session:  # the page is about that rollout: the next try is not vetoed
        assert alert["labels"]["flag"] == FLAG
        assert vetoes(session, flag=FLAG, environment=ENV) == []
    with httpx.Client(base_url=server.url, timeout=10, follow_redirects=False) as web:
        cookie, _ = login(web)
        page = web.get("/console/alerts", headers=cookie)
    assert page.status_code == 200
    assert "rollout-rolled-back" in page.text and f"rollout {rid} of {FLAG}" in page.text
    got = by_path(receiver)
    note = signed_body(got["/deploy-bot"][0], hooks["deploy-bot"])
    assert note["type"] == "rollout.rolled_back"
    assert (note["data"]["who"], note["data"]["reason"]) == (
        "bootstrap", "support calls about uploads")  # fmt: skip
    assert note["data"]["decision"] == frozen["decision"]
    assert len(got["/on-call"]) == 1


def test_pause_and_completion_tell_the_targets_and_an_unknown_target_is_skipped(
    server: LiveServer,
    clock: ManualClock,
    receiver: Receiver,
    hooks: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    rt = server.runtime
    plan = {**NOTIFIED, "notify": ["deploy-bot", "slack:#nobody"],
            "stages": [{"percent": 100, "min_duration": "1h", "monitor_only": True}],
            "guardrails": PLAN["rollout"]["guardrails"][:1]}  # fmt: skip
    with server.client() as api:
        rid = started(api, plan)
        ok(api.post(f"{API}/{rid}/pause", json={"reason": "lunch"}))
        ok(api.post(f"{API}/{rid}/resume"))
        with caplog.at_level(logging.WARNING, logger="reelout.rollouts"):
            run_jobs(rt, tick=True)
        clock.advance(2 * 3600)
        completed = tick(rt, rid, arm(N, error_rate=rate(N // 50, N)), arm(0))
        assert completed.rollout.state == "completed", completed.rollout.last_decision
        run_jobs(rt, tick=True)
        alerts = ok(api.get("/api/v1/alerts"))["alerts"]
    assert alerts == []  # no page for a pause or a completion
    assert "names no slack receiver 'nobody'" in caplog.text
    notes = [signed_body(r, hooks["deploy-bot"]) for r in by_path(receiver)["/deploy-bot"]]
    assert [n["type"] for n in notes] == ["rollout.paused", "rollout.completed"]
    assert (notes[0]["data"]["who"], notes[0]["data"]["reason"]) == ("bootstrap", "lunch")
    assert notes[1]["data"]["who"] == "rollout-controller"
    assert notes[1]["data"]["decision"]["decision"] == "complete"
    assert set(by_path(receiver)) == {"/deploy-bot"}


def test_the_rule_is_stored_once_kept_as_edited_and_put_back_when_deleted(
    server: LiveServer, clock: ManualClock, receiver: Receiver, hooks: dict[str, str]
) -> None:
    rt = server.runtime
    rule_url = "/api/v1/alerts/rules/rollout-rolled-back"

    def rolled_back() -> list[dict[str, Any]]:
        """Start a rollout, roll it back by hand, and the alerts firing once the jobs ran."""
        with server.client() as api:
            rid = started(api, PLAN["rollout"])
            ok(api.post(f"{API}/{rid}/rollback", json={"reason": "test"}))
            clock.advance(1)
            run_jobs(rt, tick=True)
            found = ok(api.get("/api/v1/alerts", params={"state": "firing"}))["alerts"]
        return [a for a in found if a["labels"]["rollout"] == str(rid)]

    with server.client() as api:
        assert api.get(rule_url).status_code == 404, "not before the first rollback"
    assert len(rolled_back()) == 1
    with server.client() as api:
        stored = ok(api.get(rule_url))
        assert stored["updated_by"] == "rollout-controller", "stored as the controller"
        ok(api.put(rule_url, json={**stored["rule"], "enabled": False}))
    assert rolled_back() == [], "disabled by a person: no page"
    with server.client() as api:
        assert ok(api.get(rule_url))["enabled"] is False, "left as it was edited"
        assert api.delete(rule_url).status_code == 204
    assert len(rolled_back()) == 1, "deleted: stored again at the next rollback"
