"""The rollouts on `/metrics`, scraped over real HTTP and read from the database at scrape time:
decisions and commands by reason class, and the newest rollout of each flag: its state, its
stage's percentage and each guardrail's bound against its threshold."""

from __future__ import annotations

from datetime import timedelta

import pytest

from reelout.clock import ManualClock
from tests.rollouts.conftest import API, ENV, FLAG, FLAGS, PLAN
from tests.rollouts.test_effects import HARMFUL, HEALTHY, ok, started, tick
from tests.support.live import LiveServer, StartLive
from tests.telemetry.test_prometheus import scrape, value

DECISIONS = "reelout_rollout_decisions_total"
STATE = "reelout_rollout_state"
PERCENT = "reelout_rollout_stage_percent"
BOUND = "reelout_rollout_guardrail_bound"
THRESHOLD = "reelout_rollout_guardrail_threshold"
ARM = "reelout_rollout_arm_info"
OTHER_PLAN = {**PLAN["rollout"], "flag": "other", "treatment": "b",
              "control": {"variation": "a", "allocation": "matched"}}  # fmt: skip


@pytest.fixture
def server(live_servers: StartLive, clock: ManualClock, database_url: str) -> LiveServer:
    """On SQLite and on PostgreSQL (the counts are upserts, the newest rollouts a subquery)."""
    live = live_servers(clock=clock, seed_flags=False, database_url=database_url)
    with live.client() as admin:
        reply = admin.put(f"/api/v1/environments/{ENV}/flagset", json=FLAGS)
        assert reply.status_code in (200, 201), reply.text
    return live


def test_decisions_states_stages_and_guardrails_show_at_each_scrape(
    server: LiveServer, clock: ManualClock
) -> None:
    rt = server.runtime
    with server.client() as api:
        first = started(api, PLAN["rollout"])
        clock.advance(60)
        tick(rt, first, *HEALTHY)
        clock.advance(60)
        tick(rt, first, *HEALTHY, telemetry_watermark=clock.now() - timedelta(hours=1))
        clock.advance(60)
        tick(rt, first, *HARMFUL)  # rolled back by the controller
        second = started(api, PLAN["rollout"])
        clock.advance(60)
        running = tick(rt, second, *HEALTHY).rollout
        other = ok(api.post(API, json={"rollout": OTHER_PLAN}), 201)["id"]
        ok(api.post(f"{API}/{other}/abort", json={"reason": "wrong flag"}))
    found = scrape(server)

    counted = {(labels["decision"], labels["reason"]): v for labels, v in found[DECISIONS]}
    assert counted == {
        ("hold", "collecting"): 2,
        ("hold", "telemetry_lag"): 1,
        ("rollback", "guardrail"): 1,  # the controller's own rollback command is not counted again
        ("start", "command"): 2,
        ("abort", "command"): 1,
    }
    states = {(labels["rollout"], labels["state"]): v for labels, v in found[STATE]}
    assert {k: v for k, v in states.items() if v} == {(str(second), "running"): 1,
                                                     (str(other), "aborted"): 1}  # fmt: skip
    assert (str(first), "rolled_back") not in states, "the newest rollout of each flag only"
    assert states[(str(second), "paused")] == 0 and len(states) == 2 * 6
    assert found[PERCENT] == [({"flag": FLAG, "environment": ENV, "rollout": str(second)}, 10.0)]
    assert sorted((labels["arm"], labels["variant"], labels["served_as"], v)
                  for labels, v in found[ARM]) == [
        ("control", "off", f"off~r{second}", 1.0), ("treatment", "on", f"on~r{second}", 1.0)
    ]  # fmt: skip

    assert running.last_decision is not None
    error_rate = running.last_decision["per_metric"]["error_rate"]
    where = {"flag": FLAG, "environment": ENV, "rollout": str(second)}
    assert value(found, BOUND, **where, metric="error_rate") == error_rate["interval"][0]
    assert value(found, THRESHOLD, **where, metric="error_rate") == 0.0
    assert [labels["metric"] for labels, _ in found[BOUND]] == ["error_rate"], (
        "crash_rate has no data yet: no bound")  # fmt: skip

    with server.client() as api:
        ok(api.post(f"{API}/{second}/rollback", json={"reason": "by hand"}))
    again = scrape(server)
    assert value(again, DECISIONS, decision="rollback", reason="command") == 1
    assert value(again, STATE, rollout=str(second), state="rolled_back") == 1
    assert PERCENT not in again and BOUND not in again, "only running or paused rollouts"
    assert ARM not in again
