"""A rollout's report over real HTTP and from the command line: a rollout driven through real
decisions (hold, advance, then a rollback on proven harm) with telemetry sent through the real
ingest and rolled up by the real job, so the report's KPI table has both arms."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from reelout.clock import ManualClock
from tests.rollouts.conftest import API, ENV, FLAG, PLAN, check, on_manual_clock
from tests.support.cli import Cli, as_json, cli_for, ok, refused
from tests.support.jobs import run_jobs, telemetry_only
from tests.support.live import LiveServer, StartLive
from tests.telemetry.conftest import client_key
from tests.telemetry.conftest import upload_outcome as upload
from tests.web.test_rollout_pages import record

DOC = Path(__file__).resolve().parents[2] / "docs" / "rollouts" / "report.md"


def documented() -> dict[str, Any]:
    """The JSON example of docs/rollouts/report.md."""
    found = re.search(r"^```json\n(.*?)^```$", DOC.read_text(encoding="utf-8"), re.M | re.S)
    assert found, "no JSON example on the report's page"
    shown: dict[str, Any] = json.loads(found.group(1))
    return shown


@pytest.fixture
def server(live_servers: StartLive, clock: ManualClock) -> LiveServer:
    return on_manual_clock(live_servers, clock)


def send_uploads(live: LiveServer, clock: ManualClock, rid: int) -> None:
    """100 uploads an arm (under the keys rollout `rid` serves them as): 85 of the control's
    succeed in 180 s, 97 of the treatment's in 80 s."""
    on, off = f"on~r{rid}", f"off~r{rid}"
    events = [upload(clock, off, ok=i < 85, seconds=180, flag=FLAG) for i in range(100)]
    events += [upload(clock, on, ok=i < 97, seconds=80, flag=FLAG) for i in range(100)]
    with live.client(token=client_key(live, ENV)) as app:
        reply = check(app.post("/api/v1/telemetry/events", json=events))
    assert reply["accepted"] == len(events)


def drive(live: LiveServer, clock: ManualClock) -> tuple[int, dict[str, datetime]]:
    """A rollout of the tests' plan started (its crash rate dismissed), fed telemetry, held, advanced to 25 % after its
    2 h, then rolled back on a proven regression of its error rate; the rollout and when
    each step happened."""
    with live.client() as admin:
        rid = int(check(admin.post(API, json=PLAN), 201)["id"])
        check(admin.post(f"{API}/{rid}/start"))
        why = {"metric": "crash_rate", "reason": "no crash reports from this SDK yet"}
        check(admin.post(f"{API}/{rid}/dismiss", json=why))
    at = {"start": clock.now()}
    clock.advance(60)
    send_uploads(live, clock, rid)
    clock.advance(60)
    run_jobs(live.runtime, registry=telemetry_only(), tick=True)  # the decisions are ours
    clock.advance(600)
    assert record(live.runtime, clock, rid, (80, 80)).rollout.state == "running"
    clock.advance(2 * 3600)
    advanced = record(live.runtime, clock, rid, (80, 80)).rollout
    assert (advanced.state, advanced.stage) == ("running", 1), advanced.last_decision
    at["advance"] = clock.now()
    clock.advance(600)
    rolled = record(live.runtime, clock, rid, (240, 80)).rollout
    assert rolled.state == "rolled_back", rolled.last_decision
    at["rollback"] = clock.now()
    clock.advance(3600)  # the report is read later: a finished rollout's window ends at its end
    return rid, at


def test_the_report_of_a_rolled_back_rollout(server: LiveServer, clock: ManualClock) -> None:
    rid, at = drive(server, clock)
    with server.client() as admin:
        report = check(admin.get(f"{API}/{rid}/report"))
        rollout = check(admin.get(f"{API}/{rid}"))
        log = check(admin.get(f"{API}/{rid}/log", params={"limit": 500}))["entries"]
    assert report["rollout"] == rollout and report["rollout"]["plan"] == PLAN
    assert report["final"] is True
    assert datetime.fromisoformat(report["generated_at"]) == clock.now()
    window = report["window"]
    assert datetime.fromisoformat(window["since"]) == at["start"]
    assert datetime.fromisoformat(window["until"]) == at["rollback"]  # not now: it is over

    first, second, third, last = report["stages"]
    assert (first["percent"], second["percent"], third["percent"], last["percent"]) == (
        10, 25, 50, 100,
    )  # fmt: skip
    assert datetime.fromisoformat(first["entered_at"]) == at["start"]
    assert datetime.fromisoformat(first["left_at"]) == at["advance"]
    assert first["duration_seconds"] == (at["advance"] - at["start"]).total_seconds()
    assert first["units"] == {"treatment": 4000, "control": 4000}
    assert first["decisions"] == {"advance": 1, "hold": 1}
    assert datetime.fromisoformat(second["left_at"]) == at["rollback"]
    assert second["duration_seconds"] == 600
    assert second["decisions"] == {"rollback": 1}
    assert third["entered_at"] is None and third["duration_seconds"] is None
    assert third["units"] is None and third["decisions"] == {}
    assert report["decisions"] == {"advance": 1, "hold": 1, "rollback": 1}

    kpis = {row["metric"]: row for row in report["kpis"]["kpis"]}
    success = kpis["upload_success_rate"]
    assert success["control"]["variant"] == f"off~r{rid}"
    assert success["treatment"]["variant"] == f"on~r{rid}"
    assert success["control"]["n"] == success["treatment"]["n"] == 100
    assert success["control"]["value"] == pytest.approx(0.85)
    assert success["treatment"]["value"] == pytest.approx(0.97)
    assert success["treatment"]["lower"] < 0.97 < success["treatment"]["upper"]
    assert success["difference"]["estimate"] == pytest.approx(0.12)
    assert success["target"] == {"op": ">=", "value": 0.95} and success["passed"] is True
    assert kpis["upload_seconds_100mb"]["passed"] is False  # 160 s for 100 MB: over 90 s
    assert (report["kpis"]["flag"], report["kpis"]["environment"]) == (FLAG, ENV)

    (error_rate,) = [g for g in report["guardrails"] if g["metric"] == "error_rate"]
    assert error_rate["state"] == "fail" and error_rate["n_treatment"] == 4000
    assert error_rate["dismissed"] is None
    assert [g["metric"] for g in report["guardrails"]] == ["error_rate", "crash_rate"]
    crash_rate = report["guardrails"][1]
    assert crash_rate["dismissed"] == "no crash reports from this SDK yet"
    assert report["log"] == log  # every entry, oldest first
    assert [e["what"] for e in report["log"]] == [
        "create", "start", "dismiss", "hold", "advance", "advance", "rollback", "rollback",
    ]  # fmt: skip
    shown = documented()  # the docs' example is this rollout's report, abridged
    assert list(shown) == list(report)
    for field in ("final", "window", "stages", "decisions"):
        assert shown[field] == report[field], field
    assert shown["kpis"]["kpis"][0]["treatment"]["value"] == success["treatment"]["value"]
    assert set(shown["guardrails"][0]) <= set(error_rate) | {"…"}
    assert set(shown["log"][0]) == set(report["log"][0])
    assert {k: v for k, v in shown["frozen_evidence"].items() if k != "decision"} == {
        k: v for k, v in report["frozen_evidence"].items() if k != "decision"
    }
    frozen = report["frozen_evidence"]  # what the rollback froze, as the rollout has it
    assert frozen == rollout["frozen_evidence"]
    assert (frozen["cause"], frozen["stage"], frozen["percent"]) == ("decision", 1, 25)
    assert frozen["decision"]["per_metric"]["error_rate"]["state"] == "fail"


def test_a_running_rollouts_report_runs_to_now_and_a_pending_one_has_no_window(
    server: LiveServer, clock: ManualClock
) -> None:
    with server.client() as admin:
        rid = check(admin.post(API, json=PLAN), 201)["id"]
        pending = check(admin.get(f"{API}/{rid}/report"))
        assert pending["window"] is None and pending["kpis"] is None
        assert pending["final"] is False and [s["entered_at"] for s in pending["stages"]] == [
            None, None, None, None,
        ]  # fmt: skip
        check(admin.post(f"{API}/{rid}/start"))
        clock.advance(1800)
        running = check(admin.get(f"{API}/{rid}/report"))
        missing = admin.get(f"{API}/{rid + 1}/report")
    assert running["stages"][0]["left_at"] is None
    assert running["stages"][0]["duration_seconds"] == 1800
    assert datetime.fromisoformat(running["window"]["until"]) == clock.now()
    kpis = {row["metric"]: row for row in running["kpis"]["kpis"]}
    assert kpis["upload_success_rate"]["treatment"]["n"] == 0  # no telemetry yet
    assert (missing.status_code, missing.json()["code"]) == (404, "ROLLOUT_NOT_FOUND")
    with server.client(token=None) as anonymous:
        assert anonymous.get(f"{API}/{rid}/report").status_code == 401


@pytest.fixture
def cli(server: LiveServer, monkeypatch: pytest.MonkeyPatch) -> Cli:
    return cli_for(server, monkeypatch)


def test_reelout_rollouts_report(
    cli: Cli, server: LiveServer, clock: ManualClock, tmp_path: Path
) -> None:
    rid, at = drive(server, clock)
    with server.client() as admin:
        api = check(admin.get(f"{API}/{rid}/report"))
    given = as_json(cli("rollouts", "report", str(rid), "--json"))
    assert given.pop("generated_at") != api.pop("generated_at")  # the CLI's clock is real time
    assert given == api  # a rollout that is over reports the same whenever it is read

    shown = ok(cli("rollouts", "report", str(rid))).stdout
    assert f"rollout {rid}: {FLAG} in {ENV}" in shown and "rolled_back" in shown
    assert f"arms: on (served as on~r{rid}) against off (served as off~r{rid})" in shown
    assert "2h12m" in shown  # the first stage's duration
    assert "4000 / 4000" in shown and "advance 1, hold 1" in shown
    assert "Upload success rate" in shown and "97.0%" in shown and "pass" in shown
    assert "error_rate" in shown and "fail" in shown
    assert "dismissed: no crash reports from this SDK yet" in shown
    assert "rolled back on:" in shown and "Stage: 2 (25 %)" in shown

    page = tmp_path / "report.html"
    said = ok(cli("rollouts", "report", str(rid), "--output", str(page))).stdout
    assert str(page) in said
    text = page.read_text(encoding="utf-8")
    assert text.startswith("<!doctype html>") and f"Rollout {rid} report" in text
    assert 'id="report-kpis"' in text and "97.0 %" in text
    assert 'data-chart id="chart-error_rate-harm"' in text
    assert 'data-chart id="chart-kpi-upload_success_rate"' in text
    assert "uPlot" in text  # the charts' library inlined: the file stands alone
    assert "/console/static/" not in text
    refused(cli("rollouts", "report", "99"), "ROLLOUT_NOT_FOUND", "no rollout 99")
    assert at["rollback"] - at["start"] > timedelta(hours=2)
