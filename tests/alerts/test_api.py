"""/api/v1/alerts over real HTTP: admin keys only; rules in JSON and YAML with coded refusals
that change nothing; the seed's rules; routing; silences; receivers (the URL is hostile input);
alerts with what mutes them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest

from reelout.clock import ManualClock
from tests.alerts.conftest import SeriesSource
from tests.support.jobs import run_jobs
from tests.support.live import LiveServer, StartLive

RULE: dict[str, Any] = {
    "id": "variant-errors",
    "signal": {"metric": "error_rate", "scope": {"flag": "*", "variant": "*"}, "window": "5m"},
    "condition": {"op": ">", "threshold": 0.05, "min_denominator": 10},
    "severity": "page",
}
YAML = """\
id: yaml-rule
signal: {metric: upload_failure_rate, window: 30m}
condition: {op: ">", threshold: 0.03}
for: 30m
"""


def rules_of(api: httpx.Client) -> dict[str, dict[str, Any]]:
    reply = api.get("/api/v1/alerts/rules")
    assert reply.status_code == 200, reply.text
    return {r["id"]: r for r in reply.json()}


def test_the_seeds_rules_are_installed_on_first_start(server: LiveServer) -> None:
    with server.client() as api:
        found = rules_of(api)
    assert set(found) == {"error-rate-critical", "upload-failure-sustained", "upload-success-daily"}
    error = found["error-rate-critical"]["rule"]
    assert error["condition"] == {"op": ">", "threshold": 0.05, "min_denominator": 200.0}
    assert (error["signal"]["window"], error["for"], error["severity"]) == ("5m", "0s", "page")
    failures = found["upload-failure-sustained"]["rule"]
    assert (failures["for"], failures["severity"], failures["condition"]["threshold"]) == (
        "30m", "warning", 0.03)  # fmt: skip
    digest = found["upload-success-daily"]
    assert digest["rule"]["schedule"] == "0 9 * * *" and digest["kind"] == "digest"
    assert digest["next_run_at"] == "2026-01-01T09:00:00Z"


def test_no_seed_when_turned_off_and_never_again_once_deleted(start_live: StartLive) -> None:
    with start_live(seed_alerts=False).client() as api:
        assert rules_of(api) == {}
    server = start_live()
    with server.client() as api:
        for rule_id in rules_of(api):
            assert api.delete(f"/api/v1/alerts/rules/{rule_id}").status_code == 204
    from reelout.alerts.defaults import seed_on_start

    with server.runtime.db.session() as session:
        seed_on_start(session, server.runtime.clock, server.runtime.settings)
    with server.client() as api:
        assert rules_of(api) == {}


def test_admin_keys_only(server: LiveServer) -> None:
    with server.client(token=None) as anonymous:
        reply = anonymous.get("/api/v1/alerts")
    assert reply.status_code == 401 and reply.json()["code"] == "MISSING_KEY"


def test_rules_crud_in_json_and_yaml(server: LiveServer) -> None:
    with server.client() as api:
        created = api.post("/api/v1/alerts/rules", json=RULE)
        assert created.status_code == 201, created.text
        assert created.json()["rule"]["keep_firing_for"] == "0s"
        again = api.post("/api/v1/alerts/rules", json=RULE)
        assert (again.status_code, again.json()["code"]) == (409, "RULE_EXISTS")
        yaml_reply = api.put(
            "/api/v1/alerts/rules/yaml-rule",
            content=YAML,
            headers={"Content-Type": "application/yaml"},
        )
        assert yaml_reply.status_code == 201, yaml_reply.text
        assert yaml_reply.json()["rule"]["for"] == "30m"
        replaced = api.put("/api/v1/alerts/rules/yaml-rule", json={**RULE, "id": "yaml-rule"})
        assert replaced.status_code == 200 and replaced.json()["rule"]["severity"] == "page"
        assert api.delete("/api/v1/alerts/rules/yaml-rule").status_code == 204
        gone = api.get("/api/v1/alerts/rules/yaml-rule")
        assert (gone.status_code, gone.json()["code"]) == (404, "RULE_NOT_FOUND")
        changes = api.get("/api/v1/audit/all", params={"area": "alerts"}).json()["entries"]
    actions = [c["action"] for c in changes if c["target_id"] in ("variant-errors", "yaml-rule")]
    assert actions == ["alerts.rule_deleted", "alerts.rule_saved", "alerts.rule_saved",
                       "alerts.rule_saved"]  # fmt: skip


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({**RULE, "signal": {**RULE["signal"], "window": "5 minutes"}}, 422, "INVALID_DURATION"),
        ({**RULE, "signal": {**RULE["signal"], "metric": "crash_rate"}}, 422, "UNKNOWN_METRIC"),
        ({**RULE, "condition": None}, 422, "CONDITION_REQUIRED"),
        ({**RULE, "kind": "digest", "schedule": "every day"}, 422, "INVALID_CRON"),
        ({**RULE, "annotations": {"summary": "{% if %}"}}, 422, "INVALID_TEMPLATE"),
        ("id: [unclosed", 400, "RULES_UNREADABLE"),
        ([RULE], 422, "INVALID_RULE"),
    ],
)
def test_a_bad_rule_is_refused_with_its_code_and_changes_nothing(
    server: LiveServer, body: Any, status: int, code: str
) -> None:
    with server.client() as api:
        before = rules_of(api)
        if isinstance(body, str):
            reply = api.post("/api/v1/alerts/rules", content=body)
        else:
            reply = api.post("/api/v1/alerts/rules", json=body)
        assert (reply.status_code, reply.json()["code"]) == (status, code), reply.text
        assert reply.json()["message"]
        assert rules_of(api) == before


def test_apply_is_all_or_nothing(server: LiveServer) -> None:
    document = {"alert_rules": [RULE, {**RULE, "id": "second", "signal": {
        **RULE["signal"], "metric": "nope"}}], "routing": {"group_wait": "0s"}}  # fmt: skip
    with server.client() as api:
        refused = api.post("/api/v1/alerts/rules/apply", json=document)
        assert refused.json()["code"] == "UNKNOWN_METRIC"
        assert "variant-errors" not in rules_of(api)
        document["alert_rules"][1]["signal"]["metric"] = "error_rate"
        applied = api.post("/api/v1/alerts/rules/apply", json=document).json()
        assert applied == {"created": ["variant-errors", "second"], "updated": [],
                           "unchanged": [], "routing": "updated"}  # fmt: skip
        again = api.post("/api/v1/alerts/rules/apply", json=document).json()
        assert (
            again["unchanged"] == ["variant-errors", "second"] and again["routing"] == "unchanged"
        )
        assert api.get("/api/v1/alerts/routing").json()["group_wait"] == "0s"


def test_the_rule_limit(start_live: StartLive) -> None:
    with start_live(alerts_max_rules=4).client() as api:
        assert api.post("/api/v1/alerts/rules", json=RULE).status_code == 201
        second = api.post("/api/v1/alerts/rules", json={**RULE, "id": "second"})
    assert (second.status_code, second.json()["code"]) == (409, "TOO_MANY_RULES")


def test_silences_mute_alerts_until_they_end_or_are_expired(
    server: LiveServer, clock: ManualClock, signals: SeriesSource
) -> None:
    with server.client() as api:
        api.post("/api/v1/alerts/rules", json=RULE)
        reply = api.post("/api/v1/alerts/silences", json={
            "matchers": [{"name": "variant", "value": "on"}], "duration": "1h",
            "comment": "known issue, fix deploying", "created_by": "ana"})  # fmt: skip
        assert reply.status_code == 201, reply.text
        silence = reply.json()
        assert silence["state"] == "active" and silence["created_by"] == "ana"
        signals.add("error_rate", clock.now(), 5, 20, flag="f", variant="on")
        clock.advance(60)
        run_jobs(server.runtime, tick=True)
        [alert] = api.get("/api/v1/alerts", params={"rule": "variant-errors"}).json()["alerts"]
        assert alert["state"] == "firing" and alert["silenced_by"] == [silence["id"]]
        expired = api.delete(f"/api/v1/alerts/silences/{silence['id']}").json()
        assert expired["state"] == "expired" and expired[
            "ends_at"
        ] == clock.now().isoformat().replace("+00:00", "Z")
        [alert] = api.get("/api/v1/alerts", params={"rule": "variant-errors"}).json()["alerts"]
        assert alert["silenced_by"] == []
        assert api.get("/api/v1/alerts/silences").json() == []
        assert len(api.get("/api/v1/alerts/silences", params={"expired": "true"}).json()) == 1


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"matchers": [{"name": "flag", "value": "f"}], "comment": "x"}, "SILENCE_END_REQUIRED"),
        ({"matchers": [{"name": "flag", "value": "f"}], "comment": "x", "duration": "0s"},
         "SILENCE_ENDS_BEFORE_START"),
        ({"matchers": [{"name": "flag", "value": "f"}], "comment": "x", "duration": "60d"},
         "SILENCE_TOO_LONG"),
        ({"matchers": [], "comment": "x", "duration": "1h"}, "INVALID_REQUEST"),
        ({"matchers": [{"name": "flag", "value": "f"}], "duration": "1h"}, "INVALID_REQUEST"),
    ],
)  # fmt: skip
def test_bad_silences_are_refused(server: LiveServer, body: dict[str, Any], code: str) -> None:
    with server.client() as api:
        reply = api.post("/api/v1/alerts/silences", json=body)
        assert reply.json()["code"] == code, reply.text
        assert api.get("/api/v1/alerts/silences").json() == []


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("http://169.254.169.254/latest/meta-data", "WEBHOOK_ADDRESS_NOT_ALLOWED"),
        ("http://[::ffff:10.0.0.1]/x", "WEBHOOK_ADDRESS_NOT_ALLOWED"),
        ("ftp://example.com/x", "INVALID_RECEIVER_URL"),
    ],
)
def test_a_receiver_url_is_hostile_input(start_live: StartLive, url: str, code: str) -> None:
    with start_live(webhook_allow_networks="").client() as api:
        reply = api.post(
            "/api/v1/alerts/receivers", json={"id": "x", "kind": "webhook", "url": url}
        )
        assert (reply.status_code, reply.json()["code"]) == (400, code)
        assert api.get("/api/v1/alerts/receivers").json() == []


def test_receivers_show_their_secret_once(server: LiveServer) -> None:
    with server.client() as api:
        made = api.post("/api/v1/alerts/receivers", json={
            "id": "pager", "kind": "webhook", "url": "https://hooks.example.com/a",
            "matchers": {"severity": "page"}}).json()  # fmt: skip
        assert made["secret"].startswith("whsec_")
        [listed] = api.get("/api/v1/alerts/receivers").json()
        assert "secret" not in listed and listed["secret_hint"] == made["secret"][:10] + "…"
        slack = api.post("/api/v1/alerts/receivers", json={
            "id": "team", "kind": "slack", "url": "https://hooks.slack.com/services/T/B/X"}).json()  # fmt: skip
        assert slack["secret"] is None
        dup = api.post("/api/v1/alerts/receivers", json={"id": "team", "kind": "slack",
                                                          "url": "https://example.com"})  # fmt: skip
        assert dup.json()["code"] == "RECEIVER_EXISTS"
        assert api.delete("/api/v1/alerts/receivers/team").status_code == 204
        assert api.get("/api/v1/alerts/receivers/team").json()["code"] == "RECEIVER_NOT_FOUND"


def test_a_failing_delivery_is_retried_then_logged_failed(
    server: LiveServer, clock: ManualClock
) -> None:
    from tests.webhooks.receiver import Receiver, Reply

    with Receiver(clock) as rec, server.client() as api:
        rec.script(Reply(500))
        api.post("/api/v1/alerts/receivers", json={"id": "r", "kind": "webhook", "url": rec.url()})
        queued = api.post("/api/v1/alerts/receivers/r/test")
        assert queued.status_code == 202 and queued.json()["state"] == "pending"
        run_jobs(server.runtime)
        [first] = api.get("/api/v1/alerts/deliveries").json()["deliveries"]
        assert (first["state"], first["attempts"], first["last_status"]) == ("pending", 1, 500)
        clock.advance(timedelta(minutes=5).total_seconds())
        run_jobs(server.runtime)
        [done] = api.get("/api/v1/alerts/deliveries").json()["deliveries"]
    assert (done["state"], done["attempts"]) == ("delivered", 2)
    assert [r.headers["reelout-event-type"] for r in rec.requests] == ["alert.test"] * 2
