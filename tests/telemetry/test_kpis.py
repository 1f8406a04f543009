"""KPIs per cohort from real telemetry: events sent over HTTP, rolled up by the job, read back
as the seed's table (API and CLI) and as the signals the alert rules evaluate."""

from __future__ import annotations

import json
import math
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest

from reelout.clock import ManualClock
from reelout.webhooks.signing import verify
from tests.support.cli import as_json, cli_for, ok, refused
from tests.support.jobs import run_jobs
from tests.support.live import LiveServer, StartLive
from tests.telemetry.conftest import client_key
from tests.telemetry.conftest import upload_outcome as upload
from tests.webhooks.receiver import Receiver

FLAG = "new-uploader"
LOOPBACK = ["127.0.0.0/8"]


def send(live: LiveServer, key: str, events: list[dict[str, Any]]) -> None:
    with live.client(token=key) as app:
        reply = app.post("/api/v1/telemetry/events", json=events)
    assert reply.status_code == 200, reply.text
    assert reply.json()["accepted"] == len(events), reply.text


@pytest.fixture
def reelout(live_servers: StartLive, clock: ManualClock) -> tuple[LiveServer, str]:
    live = live_servers(
        clock=clock, telemetry_rollup_delay_seconds=0, webhook_allow_networks=LOOPBACK
    )
    return live, client_key(live)


def test_the_seed_table_compares_treatment_with_control(
    reelout: tuple[LiveServer, str], clock: ManualClock
) -> None:
    live, key = reelout
    events = [upload(clock, "off", ok=i < 85, seconds=180) for i in range(100)]
    events += [upload(clock, "on", ok=i < 97, seconds=80) for i in range(100)]
    send(live, key, events)
    clock.advance(60)
    run_jobs(live.runtime, tick=True)
    with live.client() as admin:
        reply = admin.get(
            "/api/v1/kpis", params={"environment": "production", "flag": FLAG, "window": "1h"}
        )
    assert reply.status_code == 200, reply.text
    rows = {row["metric"]: row for row in reply.json()["kpis"]}
    success = rows["upload_success_rate"]
    assert success["baseline"] == 0.85 and success["target"] == {"op": ">=", "value": 0.95}
    assert success["control"]["variant"] == "off" and success["treatment"]["variant"] == "on"
    assert success["control"]["value"] == pytest.approx(0.85)
    assert success["treatment"]["value"] == pytest.approx(0.97)
    assert success["control"]["n"] == success["treatment"]["n"] == 100
    low, high = success["treatment"]["lower"], success["treatment"]["upper"]
    assert low < 0.97 < high
    diff = success["difference"]
    assert diff["estimate"] == pytest.approx(0.12)
    se = math.sqrt(0.85 * 0.15 / 99 + 0.97 * 0.03 / 99)  # Welch on unit variances (n - 1)
    assert diff["upper"] - diff["lower"] == pytest.approx(2 * 1.97 * se, rel=0.02)
    assert success["passed"] is True
    upload_time = rows["upload_seconds_100mb"]
    assert upload_time["control"]["value"] == pytest.approx(360)  # 180 s for 50 MB
    assert upload_time["treatment"]["value"] == pytest.approx(160)
    assert upload_time["passed"] is False
    assert rows["video_startup_seconds"]["treatment"] is None  # no view yet: no arm to show
    assert reply.json()["watermark"] is not None


def test_kpi_query_errors_are_clear(reelout: tuple[LiveServer, str]) -> None:
    live, _ = reelout
    with live.client() as admin:
        bad_window = admin.get("/api/v1/kpis", params={"environment": "production", "window": "5y"})
        bad_metric = admin.get(
            "/api/v1/kpis", params={"environment": "production", "metric": "happiness"}
        )
        catalogue = admin.get("/api/v1/kpis/metrics").json()["metrics"]
    assert (bad_window.status_code, bad_window.json()["code"]) == (400, "INVALID_WINDOW")
    assert (bad_metric.status_code, bad_metric.json()["code"]) == (400, "UNKNOWN_METRIC")
    names = {metric["name"] for metric in catalogue}
    assert {"upload_success_rate", "rebuffer_percentage", "crash_rate", "satisfaction"} <= names


def test_an_unknown_environment_is_not_found_not_an_empty_table(
    reelout: tuple[LiveServer, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    live, _ = reelout
    with live.client() as admin:
        table = admin.get("/api/v1/kpis", params={"environment": "nope"})
        series = admin.get(
            "/api/v1/kpis/series", params={"environment": "nope", "metric": "crash_rate"}
        )
        known = admin.get("/api/v1/kpis/series", params={"environment": "preview",
                                                          "metric": "crash_rate"})  # fmt: skip
    for reply in (table, series):
        assert (reply.status_code, reply.json()["code"]) == (404, "UNKNOWN_ENVIRONMENT")
        assert "'nope'" in reply.json()["message"]
    assert table.json()["details"]["environments"] == ["development", "preview", "production"]
    assert (known.status_code, known.json()["series"]) == (200, {})  # known, just no data
    cli = cli_for(live, monkeypatch)
    refused(cli("kpi", "--env", "nope"), "UNKNOWN_ENVIRONMENT", "production")
    ok(cli("kpi", "--env", "preview"))


def test_reelout_kpi_prints_the_same_table(
    reelout: tuple[LiveServer, str], clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    live, key = reelout
    send(live, key, [upload(clock, v, ok=True) for v in ("on", "off") for _ in range(3)])
    clock.advance(60)
    run_jobs(live.runtime, tick=True)
    cli = cli_for(live, monkeypatch)
    asked = ["kpi", "--env", "production", "--flag", FLAG, "--until", clock.now().isoformat()]
    rows = {row["metric"]: row for row in as_json(cli(*asked, "--json"))["kpis"]}
    assert rows["upload_success_rate"]["treatment"]["value"] == 1.0
    with live.client() as admin:
        api = admin.get(
            "/api/v1/kpis",
            params={"environment": "production", "flag": FLAG, "until": clock.now().isoformat()},
        ).json()
    assert [row["treatment"] for row in api["kpis"]] == [
        rows[row["metric"]]["treatment"] for row in api["kpis"]
    ]
    shown = ok(cli(*asked)).stdout
    assert "Upload success rate" in shown and "100.0%" in shown and "pass" in shown
    refused(cli("kpi", "--env", "production", "--window", "soon"), "INVALID_WINDOW", "15m")
    refused(cli("kpi", "--env", "production", "--metric", "joy"), "UNKNOWN_METRIC", "'joy'")


def test_a_failing_variant_fires_the_upload_alert_from_real_telemetry(
    reelout: tuple[LiveServer, str], clock: ManualClock
) -> None:
    """The seed's upload-failure rule (> 3 % over 30 minutes, at least 100 attempts, held for
    30 minutes) on events sent over HTTP: 20 attempts an arm a minute reach its volume guard
    in the 5th minute, so it fires 30 minutes after that (and one group_wait later)."""
    live, key = reelout
    with Receiver(clock) as receiver, live.client() as admin:
        reply = admin.post(
            "/api/v1/alerts/receivers",
            json={"id": "on-call", "kind": "webhook", "url": receiver.url("/hook")},
        )
        assert reply.status_code == 201, reply.text
        secret = reply.json()["secret"]
        first_breach = clock.now()
        while not receiver.requests and clock.now() < first_breach + timedelta(hours=1):
            minute = [upload(clock, "on", ok=i >= 2) for i in range(20)]
            minute += [upload(clock, "off", ok=True) for _ in range(20)]
            send(live, key, minute)
            clock.advance(60)
            run_jobs(live.runtime, tick=True)
        fired_after = clock.now() - first_breach
    assert timedelta(minutes=35) <= fired_after <= timedelta(minutes=37)
    [got] = receiver.requests
    assert verify(secret, got.signature, got.body, now=got.at)
    [alert] = json.loads(got.body)["data"]["alerts"]
    assert alert["labels"]["variant"] == "on" and alert["labels"]["flag"] == FLAG
    assert alert["value"] == pytest.approx(0.1)


def test_everyone_without_a_flag(reelout: tuple[LiveServer, str], clock: ManualClock) -> None:
    live, key = reelout
    send(live, key, [upload(clock, "on", ok=i % 2 == 0) for i in range(10)])
    clock.advance(60)
    run_jobs(live.runtime, tick=True)
    with httpx.Client(base_url=live.url, headers={"Authorization": "Bearer x"}) as stranger:
        assert stranger.get("/api/v1/kpis", params={"environment": "production"}).status_code == 401
    with live.client() as admin:
        rows = admin.get("/api/v1/kpis", params={"environment": "production"}).json()["kpis"]
    success = next(row for row in rows if row["metric"] == "upload_success_rate")
    assert success["control"]["value"] == 0.5 and success["treatment"] is None
    assert success["passed"] is False


def test_error_rate_sees_a_long_known_viewer_fail_now(
    reelout: tuple[LiveServer, str], clock: ManualClock
) -> None:
    """Error rate counts actions (upload attempts, views) when they happen, so an alert's short
    window sees the failures of a viewer first seen hours ago."""
    live, key = reelout
    old = upload(clock, "on", ok=True)
    send(live, key, [old])
    clock.advance(3 * 3600)
    now = [{**upload(clock, "on", ok=False), "viewer_id": old["viewer_id"]} for _ in range(3)]
    view = {"viewer_id": old["viewer_id"], "view_id": "w1", "client_time": clock.now().isoformat()}
    now += [
        {**view, "event_id": str(uuid.uuid4()), "type": "play_request"},
        {**view, "event_id": str(uuid.uuid4()), "type": "error", "code": "E", "fatal": True},
    ]
    send(live, key, now)
    clock.advance(60)
    run_jobs(live.runtime, tick=True)
    with live.client() as admin:
        rows = admin.get(
            "/api/v1/kpis",
            params={"environment": "production", "metric": "error_rate", "window": "15m"},
        ).json()["kpis"]
    assert rows[0]["control"]["n"] == 4  # three failed uploads and one failed view
    assert rows[0]["control"]["value"] == 1.0


def _view(
    clock: ManualClock, viewer: str, variant: str, startup_ms: int, **counters: Any
) -> list[dict[str, Any]]:
    """One view of `viewer`: a play request, the first frame `startup_ms` later (device clock),
    and a view_end carrying `counters`, all a minute ago (a device time ahead of the server's
    counts as when the event arrived)."""
    at = clock.now() - timedelta(minutes=1)
    common = {"viewer_id": viewer, "view_id": uuid.uuid4().hex, "flags": {FLAG: variant}}

    def one(type_: str, ms: int, **fields: Any) -> dict[str, Any]:
        when = (at + timedelta(milliseconds=ms)).isoformat()
        return {**common, "event_id": str(uuid.uuid4()), "type": type_, "client_time": when,
                **fields}  # fmt: skip

    return [
        one("play_request", 0),
        one("playing", startup_ms),
        one("view_end", startup_ms + 1000, reason="completed", watch_ms=1000, **counters),
    ]


def test_log_startup_per_viewer_and_cache_hit_ratio_from_real_events(
    reelout: tuple[LiveServer, str], clock: ManualClock
) -> None:
    """Two viewers an arm: the log-startup mean averages each viewer's own mean of ln(ms); the
    cache hit ratio adds the cache_hit bytes and the views' network_bytes."""
    live, key = reelout
    events = _view(clock, "a", "off", 1000) + _view(clock, "a", "off", 4000)
    events += _view(clock, "b", "off", 2000, network_bytes=6000)
    events += _view(clock, "c", "on", 500, network_bytes=1000)
    events += _view(clock, "d", "on", 800, network_bytes=0)
    hits = [(events[-4], 3000), (events[-1], 1000)]  # c's view: 3000 cached; d's: all cached
    events += [{**view_end, "event_id": str(uuid.uuid4()), "type": "cache_hit", "bytes": n}
               for view_end, n in hits]  # fmt: skip
    send(live, key, events)
    clock.advance(120)
    run_jobs(live.runtime, tick=True)
    with live.client() as admin:
        reply = admin.get(
            "/api/v1/kpis",
            params={"environment": "production", "flag": FLAG, "window": "1h",
                    "metric": ["video_startup_log_ms", "cache_hit_ratio"]},
        )  # fmt: skip
    assert reply.status_code == 200, reply.text
    rows = {row["metric"]: row for row in reply.json()["kpis"]}
    log_startup = rows["video_startup_log_ms"]
    viewer_a = (math.log(1000) + math.log(4000)) / 2
    assert log_startup["control"]["n"] == 2
    assert log_startup["control"]["value"] == pytest.approx((viewer_a + math.log(2000)) / 2)
    assert log_startup["treatment"]["value"] == pytest.approx((math.log(500) + math.log(800)) / 2)
    assert log_startup["difference"]["estimate"] < 0  # the treatment starts faster
    cache = rows["cache_hit_ratio"]
    assert (cache["control"]["n"], cache["control"]["value"]) == (1, 0.0)
    assert cache["treatment"]["n"] == 2
    assert cache["treatment"]["value"] == pytest.approx(4000 / 5000)
