"""The KPI board and the alerts page in Chromium, on telemetry sent through the real ingest and
rolled up and evaluated by the real jobs (on a manual clock): the table and a chart per KPI;
an alert fired from failing uploads, silenced from the page, and the silence expired."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser

from reelout.clock import ManualClock
from tests.support.jobs import run_jobs
from tests.support.live import LiveServer, serving
from tests.support.settings import ADMIN_TOKEN, make_settings
from tests.telemetry.conftest import client_key
from tests.telemetry.conftest import upload_outcome as upload
from tests.web.conftest import Console, open_console
from tests.web.test_accessibility import UNREACHABLE_ACTIONS, axe_violations

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("console-browser")]
FLAG = "new-uploader"
ALERTED = "faster-uploader"  # the alerts test's own flag, so the tests share no arm
ENV = "production"


@pytest.fixture(scope="module")
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(scope="module")
def reelout(tmp_path_factory: pytest.TempPathFactory, clock: ManualClock) -> Iterator[LiveServer]:
    """A server on the manual clock whose rollups read every event at once."""
    folder: Path = tmp_path_factory.mktemp("kpi-pages")
    settings = make_settings(folder, telemetry_rollup_delay_seconds=0)
    with serving(settings, clock) as live:
        yield live


def send(live: LiveServer, events: list[dict[str, Any]]) -> None:
    with live.client(token=client_key(live, ENV)) as app:
        reply = app.post("/api/v1/telemetry/events", json=events)
    assert reply.status_code == 200, reply.text
    assert reply.json()["accepted"] == len(events), reply.text


@pytest.fixture
def console(browser: Browser, reelout: LiveServer) -> Iterator[Console]:
    page = open_console(browser, reelout.url)
    yield page
    page.context.close()


def test_the_board_explains_how_to_send_telemetry_when_there_is_none(
    console: Console, reelout: LiveServer
) -> None:
    console.page.goto(reelout.url + "/console/kpis?environment=preview")
    empty = console.text("#kpi-empty")
    assert "No telemetry in preview" in empty
    assert "POST /api/v1/telemetry/events" in empty and "docs/telemetry/apps.md" in empty
    assert console.page.locator("#kpi-table").count() == 0


def test_the_board_shows_the_seed_table_and_a_chart_per_kpi(
    console: Console, reelout: LiveServer, clock: ManualClock
) -> None:
    events = [upload(clock, "off", ok=i < 85, seconds=180) for i in range(100)]
    events += [upload(clock, "on", ok=i < 97, seconds=80) for i in range(100)]
    send(reelout, events)
    clock.advance(60)
    run_jobs(reelout.runtime, tick=True)

    page = console.page
    page.goto(f"{reelout.url}/console/kpis?environment={ENV}&flag={FLAG}&window=24h")
    page.select_option("#kpi-window", "1h")
    page.click("#kpi-show")
    page.wait_for_url("**window=1h")
    assert page.input_value("#kpi-flag") == FLAG and page.input_value("#kpi-environment") == ENV
    row = page.locator("#kpi-table tr[data-metric=upload_success_rate]")
    assert "85.0 %" in row.locator(".arm-control").inner_text()
    treatment = row.locator(".arm-treatment").inner_text()
    assert "on" in treatment and "97.0 %" in treatment and "n = 100" in treatment
    assert "95 %" in treatment  # the arm's interval
    difference = row.locator(".difference").inner_text()
    assert "+12.0 pp" in difference and "improvement" in difference
    assert row.locator(".result").inner_text() == "pass"
    slow = page.locator("#kpi-table tr[data-metric=upload_seconds_100mb]")
    assert "360.0 s" in slow.inner_text() and slow.locator(".result").inner_text() == "fail"
    assert "rolled up to" in console.text("#kpi-watermark")

    # one chart per KPI with data, a line per arm, drawn by uPlot
    console.wait("document.querySelectorAll('[data-chart][data-drawn]').length >= 2")
    for metric in ("upload_success_rate", "upload_seconds_100mb"):
        chart = page.locator(f"#chart-{metric}")
        assert chart.get_attribute("data-drawn") == "yes"
        assert chart.locator("canvas").count() == 1
        legend = chart.locator(".u-legend").inner_text()
        assert "on" in legend and "off" in legend
    with reelout.client() as admin:
        series = admin.get(
            "/api/v1/kpis/series",
            params={"environment": ENV, "flag": FLAG, "metric": "upload_success_rate",
                    "window": "1h", "step": "1m"},
        ).json()["series"]  # fmt: skip
    assert sorted(series) == ["off", "on"]
    assert not [log for log in console.logs if "PAGE ERROR" in log or "Refused" in log]


RULE = {
    "description": "Fires at once when the new uploader fails (for the console test).",
    "signal": {
        "metric": "upload_failure_rate",
        "scope": {"environment": ENV, "flag": ALERTED, "variant": "*"},
        "window": "5m",
    },
    "condition": {"op": ">", "threshold": 0.03, "min_denominator": 2},
    "for": "0s",
    "severity": "page",
}


def fire(reelout: LiveServer, clock: ManualClock, flag: str = ALERTED) -> str:
    """A rule like the above on `flag`, then failing uploads in its `on` arm (and good ones in
    `off`), rolled up and evaluated; the rule's id."""
    rule = {**RULE, "id": f"console-{flag}"}
    rule["signal"] = {**RULE["signal"], "scope": {"environment": ENV, "flag": flag, "variant": "*"}}
    with reelout.client() as admin:
        created = admin.post("/api/v1/alerts/rules", json=rule)
        assert created.status_code == 201, created.text
    events = [upload(clock, "on", ok=i >= 5, flag=flag) for i in range(10)]
    send(reelout, events + [upload(clock, "off", ok=True, flag=flag) for _ in range(10)])
    clock.advance(60)
    run_jobs(reelout.runtime, tick=True)
    with reelout.client() as admin:
        firing = admin.get("/api/v1/alerts", params={"rule": rule["id"]}).json()["alerts"]
    assert [(a["state"], a["labels"]["variant"]) for a in firing] == [("firing", "on")], firing
    return str(rule["id"])


def silences(reelout: LiveServer) -> list[dict[str, Any]]:
    with reelout.client() as admin:
        reply = admin.get("/api/v1/alerts/silences")
    assert reply.status_code == 200, reply.text
    found: list[dict[str, Any]] = reply.json()
    return found


def test_an_alert_is_silenced_from_its_row_and_the_silence_expired(
    console: Console, reelout: LiveServer, clock: ManualClock
) -> None:
    rule = fire(reelout, clock)
    page = console.page
    page.goto(reelout.url + "/console/alerts")
    row = page.locator(f"#alerts-table tr[data-state=firing]:has(code:text-is('{rule}'))")
    assert row.count() == 1
    text = row.inner_text()
    assert "page" in text and "variant=on" in text and "fires when > 3.00 %" in text
    assert "50.00 %" in text  # 5 of 10 attempts failed
    assert rule in page.locator("#alert-rules").inner_text()
    assert "inactive → " in page.locator("#alert-history").inner_text()
    button = row.locator("button", has_text="Silence")
    button_id = button.get_attribute("id")

    # an answer without a duration is refused where it was asked, and nothing is made
    page.once("dialog", lambda dialog: dialog.accept("because"))
    button.click()
    console.wait(f"$('{button_id}-error').textContent.includes('SILENCE_ANSWER_INVALID')")
    assert silences(reelout) == []

    page.once("dialog", lambda dialog: dialog.accept("2h rolling back the new uploader"))
    button.click()
    page.locator("#alerts-live .notice").wait_for()
    [made] = silences(reelout)
    with reelout.client() as admin:
        alert = admin.get("/api/v1/alerts", params={"rule": rule}).json()["alerts"][0]
    assert {m["name"]: m["value"] for m in made["matchers"]} == alert["labels"]
    assert {m["op"] for m in made["matchers"]} == {"="}
    assert made["comment"] == "rolling back the new uploader" and made["state"] == "active"
    assert alert["silenced_by"] == [made["id"]]
    assert f"silenced by {made['id']}" in page.locator("#alerts-table").inner_text()
    assert "Silence " + made["id"] in console.text("#alerts-live .notice")

    page.once("dialog", lambda dialog: dialog.accept())
    page.click(f"#expire-{made['id']}")
    page.locator("#alerts-live .notice", has_text="has ended").wait_for()
    assert silences(reelout) == []
    assert "No silences." in page.locator("#silences-table").inner_text()


@pytest.mark.parametrize("width", [390, 1280])
def test_both_pages_pass_axe_and_fit_a_phone(
    browser: Browser, reelout: LiveServer, clock: ManualClock, width: int
) -> None:
    """With data in them (a table, charts, a firing alert): axe-core's checks, and no sideways
    scrolling at 390 px (the empty pages are in tests/web/test_accessibility.py too)."""
    flag = f"phone-{width}"
    fire(reelout, clock, flag)
    context = browser.new_context(viewport={"width": width, "height": 844}, bypass_csp=True)
    try:
        page = context.new_page()
        page.goto(reelout.url + "/console/login")
        page.fill("#key", ADMIN_TOKEN)
        page.click("#login")
        page.wait_for_url(reelout.url + "/console")
        for path in (f"/kpis?environment={ENV}&flag={flag}&window=1h", "/alerts"):
            page.goto(reelout.url + "/console" + path)
            page.wait_for_load_state("networkidle")
            assert page.locator("#kpi-table, #alerts-table tr[data-state=firing]").count() >= 1
            width_now = page.evaluate("() => document.documentElement.scrollWidth")
            assert width_now <= width, f"{path} is {width_now} px wide at {width} px"
            assert axe_violations(page) == [], path
            assert page.evaluate(UNREACHABLE_ACTIONS) == []
    finally:
        context.close()
