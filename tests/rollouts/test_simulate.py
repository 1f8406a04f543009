"""`reelout simulate` end to end: the command starts its own `reelout serve` (a child process on
an accelerated clock) on a kept data folder, or rehearses on a running server, drives synthetic
users through OFREP (or the in-process SDK and the exposure batches) and the ingest, and prints
the decision log; the rollout it leaves is read back from that folder by `reelout rollouts
show`, as a later `reelout serve` there would show it."""

from __future__ import annotations

import json
import random
import re
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner, Result

from reelout import cli_common
from reelout.cli import app
from reelout.simulate.playback import Fetched, Player
from reelout.simulate.scenarios import Behaviour
from reelout.simulate.traffic import FETCH_ERROR, user_events
from tests.support.cli import cli_env
from tests.support.live import LiveServer, StartLive
from tests.support.settings import ADMIN_TOKEN

LINE = re.compile(r"^\s*\+(\d+)h(\d\d)m\s+(\d+) %\s+(\w+)\s+(.*)$", re.MULTILINE)


@pytest.fixture
def rehearse(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    monkeypatch.setattr(cli_common.console, "width", 400)

    def run(scenario: str) -> tuple[Result, Path]:
        folder = tmp_path / scenario
        args = ["simulate", "--scenario", scenario, "--data-dir", str(folder), "--timeout", "170"]
        return CliRunner().invoke(app, args, env={"COLUMNS": "400"}), folder

    return run


def rehearse_on(live: LiveServer, monkeypatch: pytest.MonkeyPatch, *args: str) -> Result:
    """`reelout simulate --url <live> *args` on a wide console."""
    monkeypatch.setattr(cli_common.console, "width", 400)
    env = {"COLUMNS": "400", **cli_env(live.runtime.settings)}
    return CliRunner().invoke(app, ["simulate", "--url", live.url, *args], env=env)


def rehearsal_server(live_servers: StartLive) -> LiveServer:
    """A server on the rehearsal's fast clock, with a worker to process the test clip."""
    return live_servers(
        clock_speed=240, embedded_worker=True, job_poll_seconds=0.2, job_lease_seconds=60 * 240
    )


def media_requests(url: str) -> float:
    """Successful requests of published media files, from the server's `/metrics`."""
    text = httpx.get(f"{url}/metrics").text
    counts = re.findall(r"^reelout_http_requests_total\{(.*)\} (\S+)$", text, re.MULTILINE)
    return sum(float(value) for labels, value in counts
               if 'route="/media/{uid}/{version}/' in labels
               and 'status_class="2xx"' in labels)  # fmt: skip


def views_played_the_clip(live: LiveServer, output: str, videos: list[dict[str, Any]]) -> None:
    """The rehearsal published its test clip and each view fetched it for real: the server
    counted the requests, and the views' reports carry the bytes."""
    played = re.search(r"real playback of test clip (\w+): (\d+) views, (\d+) bytes fetched "
                       r"\((\d+) failed\)", output)  # fmt: skip
    assert played is not None, output
    clip, views, fetched, failed = played[1], int(played[2]), int(played[3]), int(played[4])
    assert "publishing a test clip" in output and views > 0 and failed == 0
    [video] = [v for v in videos if v["uid"] == clip]
    assert video["status"]["state"] == "ready"
    assert fetched > views * 1000  # every view brought its playlists and first segment
    served = media_requests(live.url)  # the server's own count of what it delivered
    assert served >= 4 * views, (served, views)
    with live.client() as api:
        table = api.get("/api/v1/kpis", params={"environment": "production", "window": "7d",
                                                "metric": "cache_hit_ratio"}).json()  # fmt: skip
    # the views' own reports carry network_bytes: the server's rollups count them as delivered
    [ratio] = table["kpis"]
    assert ratio["control"]["n"] >= views // 2 and ratio["control"]["value"] == 0.0, ratio


def decisions(output: str) -> list[tuple[int, str, str]]:
    """(stage percent, decision, first reason) of each printed log line."""
    return [(int(m[3]), m[4], m[5]) for m in LINE.finditer(output)]


def stored(folder: Path) -> dict[str, Any]:
    """The rollout as `reelout rollouts show` reads it from the kept data folder."""
    env = {"REELOUT_DATA_DIR": str(folder), "REELOUT_ADMIN_TOKEN": ADMIN_TOKEN,
           "REELOUT_DATABASE_URL": f"sqlite:///{folder / 'reelout.db'}"}  # fmt: skip
    shown = CliRunner().invoke(app, ["rollouts", "show", "1", "--json"], env=env)
    assert shown.exit_code == 0, shown.output
    found: dict[str, Any] = json.loads(shown.stdout)
    return found


def test_a_healthy_canary_advances_through_every_stage_and_completes(rehearse: Any) -> None:
    result, folder = rehearse("healthy")
    assert result.exit_code == 0, result.output
    log = decisions(result.output)
    advances = [percent for percent, decision, _ in log if decision == "advance"]
    assert advances == [10, 25, 50], result.output
    assert log[-1][:2] == (100, "complete"), result.output
    assert "rollout 1: completed at 100 %" in result.output
    assert "rollback" not in [decision for _, decision, _ in log]
    assert "10 %" in result.output and "monitor only" in result.output  # the plan it printed
    assert f"kept at {folder}" in result.output
    assert (folder / "simulate-admin-token").stat().st_mode & 0o077 == 0
    rollout = stored(folder)
    assert (rollout["state"], rollout["percent"]) == ("completed", 100)


def test_an_outage_of_the_apps_telemetry_holds_the_rollout_on_telemetry_lag(rehearse: Any) -> None:
    """The apps still evaluate the flag over OFREP (the server logs the exposures) but their
    events stop reaching the server: the rollups' watermark moves on, the apps' lag holds."""
    result, folder = rehearse("outage")
    assert result.exit_code == 0, result.output
    log = decisions(result.output)
    _, decision, reason = log[-1]
    assert decision == "hold", result.output
    assert re.match(
        r"telemetry lag: no client events carrying use_tus_upload since \d\d:\d\d UTC \(\w+\)"
        r" while the flag is still being evaluated \(last exposure \d\d:\d\d UTC\); none from"
        r" any app in production either; max_data_lag 10m",
        reason,
    ), reason
    assert not {"rollback", "advance", "complete"} & {decision for _, decision, _ in log}
    assert stored(folder)["state"] == "running"


def test_a_regression_rehearsed_on_a_running_server_rolls_back_and_stays_there(
    live_servers: StartLive, monkeypatch: pytest.MonkeyPatch
) -> None:
    live = rehearsal_server(live_servers)
    result = rehearse_on(live, monkeypatch, "--scenario", "regression", "--timeout", "170")
    assert result.exit_code == 0, result.output
    log = decisions(result.output)
    percent, decision, reason = log[-1]
    assert decision == "rollback", result.output
    assert re.match(r'guardrail "(upload_success_rate|error_rate)" FAIL', reason), reason
    assert "complete" not in [decision for _, decision, _ in log]
    with live.client() as api:
        rollouts = api.get("/api/v1/rollouts").json()["rollouts"]
    assert [(r["flag"], r["state"]) for r in rollouts] == [("use_tus_upload", "rolled_back")]
    assert rollouts[0]["percent"] == percent
    assert rollouts[0]["frozen_evidence"]["decision"]["decision"] == "rollback"
    assert f"console: {live.url}/console/rollouts/{rollouts[0]['id']}" in result.output
    assert "kept at" not in result.output
    uploads = re.search(r"real tus uploads: (\d+) \((\d+) cut off halfway\)", result.output)
    assert uploads is not None and int(uploads[1]) > 0, result.output
    with live.client() as api:
        videos = api.get("/api/v1/videos", params={"limit": 500}).json()["videos"]
    # each real upload is a video on the server, and so is the test clip the views played
    assert len(videos) == int(uploads[1]) + 1
    views_played_the_clip(live, result.output, videos)


def test_exposures_lost_on_the_treatments_path_hold_on_srm_and_never_roll_back(
    live_servers: StartLive, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The apps evaluate in process (the SDK on the synced flag set, following its changes) and
    report exposures themselves; the treatment reports 60 % of them."""
    live = rehearsal_server(live_servers)
    result = rehearse_on(live, monkeypatch, "--scenario", "srm", "--timeout", "170")
    assert result.exit_code == 0, result.output
    log = decisions(result.output)
    _, decision, reason = log[-1]
    assert decision == "hold", result.output
    assert re.match(r"SRM: exposures (\d+)/(\d+) against a 50/50 split, p=\S+ < 0\.001", reason)
    assert not {"rollback", "complete"} & {decision for _, decision, _ in log}, result.output
    arms = r"off~excluded: \d+, off~r1: (\d+), on~r1: (\d+)"  # the rollout's own keys
    served = re.search(rf"users \({arms}\)", result.output)
    reported = re.search(rf"exposures the apps reported: {arms}", result.output)
    assert served is not None and reported is not None, result.output
    assert int(reported[1]) == int(served[1])  # the control reports every exposure
    assert int(reported[2]) < 0.75 * int(served[2])  # the treatment about 60 % of them
    with live.client() as api:
        rollouts = api.get("/api/v1/rollouts").json()["rollouts"]
    assert [r["state"] for r in rollouts] == ["running"]


def test_the_srm_scenario_says_what_to_install_without_the_openfeature_sdk(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A server install may lack the OpenFeature SDK the in-process apps need: said at once,
    before any server starts."""
    for name in ("reelout.simulate.in_process", "reelout.client.flags"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    for name in [n for n in sys.modules if n.split(".")[0] == "openfeature"] + ["openfeature"]:
        monkeypatch.setitem(sys.modules, name, None)  # as if not installed
    args = ["simulate", "--scenario", "srm", "--data-dir", str(tmp_path / "kept")]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "400"})
    assert result.exit_code == 1
    assert "pip install openfeature-sdk" in result.output
    assert not (tmp_path / "kept").exists()


def test_a_test_clip_the_server_does_not_process_in_time_stops_the_rehearsal_before_a_rollout(
    live_servers: StartLive, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no job worker the clip stays queued: after --clip-timeout the command says so, and
    no rollout was started."""
    live = live_servers()  # no embedded worker: nothing processes the clip
    result = rehearse_on(live, monkeypatch, "--clip-timeout", "2")
    assert result.exit_code == 1
    assert "publishing a test clip (2 s, 320x180)" in result.output
    assert re.search(r"uploaded \d+ KiB over tus as video \w+; processing", result.output)
    output = " ".join(result.output.split())  # the error console wraps at its own width
    said = re.search(r"the test clip (\w+) was not ready in time \(queued\); is the server's job "
                     r"worker running\? \(--clip-timeout sets the wait\)", output)  # fmt: skip
    assert said is not None, result.output
    with live.client() as api:
        assert api.get("/api/v1/rollouts").json()["rollouts"] == []
        video = api.get(f"/api/v1/videos/{said[1]}").json()
    assert video["status"]["state"] == "queued"


def test_a_view_whose_playback_requests_fail_fails_before_its_first_frame(
    live_servers: StartLive,
) -> None:
    """A refused request (here a 404: no such video) is the view's playback failure."""
    live = live_servers()
    with httpx.Client() as http:
        fetched = Player(http, f"{live.url}/media/nothing/v1/master.m3u8").view()
    assert fetched.failure is not None and "404" in fetched.failure
    assert fetched.bytes == 0
    at = datetime.now(UTC)
    events = user_events(random.Random(1), "sim-1", "f", "on", Behaviour(), at, None, fetched)
    kinds = [event["type"] for event in events]
    assert kinds == ["upload_completed", "play_request", "error", "view_end", "app_session"]
    error, end = events[2], events[3]
    assert (error["code"], error["fatal"], error["before_first_frame"]) == (FETCH_ERROR, True, True)
    assert "404" in error["message"]
    assert (end["reason"], end["network_bytes"]) == ("error", 0)


def test_a_views_startup_counts_its_real_requests_and_its_bytes_are_theirs() -> None:
    fetched = Fetched(seconds=0.25, bytes=72_698)
    at = datetime.now(UTC)
    still = Behaviour(view_failure=0.0, startup_ms=900.0)
    events = user_events(random.Random(1), "sim-1", "f", "on", still, at, None, fetched)
    synthetic = user_events(random.Random(1), "sim-1", "f", "on", still, at)
    [end] = [event for event in events if event["type"] == "view_end"]
    [alone] = [event for event in synthetic if event["type"] == "view_end"]
    assert end["startup_ms"] == alone["startup_ms"] + 250  # same draw, plus the real 250 ms
    assert end["network_bytes"] == 72_698 and "network_bytes" not in alone
