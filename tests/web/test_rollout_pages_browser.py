"""The Rollouts pages in Chromium, on a live server with the seed's flags (on a manual clock):
a rollout created from the template through the form, started, paused and resumed by clicks
with the log growing; a refusal shown where the button is; a chart per guardrail drawn from
decisions the real decision function made; axe-core and a phone's width with data in them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from reelout.clock import ManualClock
from tests.support.live import LiveServer, serving
from tests.support.settings import ADMIN_TOKEN, make_settings
from tests.web.conftest import Console, open_console
from tests.web.test_accessibility import UNREACHABLE_ACTIONS, axe_violations
from tests.web.test_rollout_pages import record

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("console-browser")]
ENV = "production"


@pytest.fixture(scope="module")
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(scope="module")
def reelout(tmp_path_factory: pytest.TempPathFactory, clock: ManualClock) -> Iterator[LiveServer]:
    folder: Path = tmp_path_factory.mktemp("rollout-pages")
    with serving(make_settings(folder), clock) as live:
        yield live


@pytest.fixture
def console(browser: Browser, reelout: LiveServer) -> Iterator[Console]:
    page = open_console(browser, reelout.url)
    yield page
    page.context.close()


def from_template(reelout: LiveServer, flag: str) -> int:
    """A pending rollout of the template, made through the API (for the tests of one rollout)."""
    body = {"flag": flag, "environment": ENV, "treatment": "on", "control": "off"}
    with reelout.client() as api:
        made = api.post("/api/v1/rollouts/from-template", json=body)
    assert made.status_code == 201, made.text
    return int(made.json()["id"])


def api_command(reelout: LiveServer, rollout: int, name: str) -> None:
    with reelout.client() as api:
        reply = api.post(f"/api/v1/rollouts/{rollout}/{name}")
    assert reply.status_code == 200, reply.text


def log_whats(console: Console) -> list[str]:
    return console.page.eval_on_selector_all(
        "#log-table tbody tr[data-log]", "rows => rows.map(r => r.dataset.what)"
    )


def test_create_from_the_template_then_start_pause_and_resume(
    console: Console, reelout: LiveServer
) -> None:
    page = console.page
    page.click("header nav a:text-is('Rollouts')")
    page.wait_for_url("**/console/rollouts")
    assert "No rollouts yet" in console.text("#rollouts-table")

    # a flag that does not exist is refused under the form, with its code
    page.fill("#template-flag", "no_such_flag")
    page.select_option("#template-environment", ENV)
    page.click("#create-template-submit")
    console.wait("$('create-template-error').textContent.includes('FLAG_NOT_FOUND')")

    page.fill("#template-flag", "use_tus_upload")
    page.click("#create-template-submit")
    page.wait_for_url("**/console/rollouts/*")
    assert console.text("#rollout-state") == "pending"
    stages = page.locator("#rollout-timeline li.stage")
    assert stages.count() == 4
    assert [stages.nth(i).locator("strong").inner_text() for i in range(4)] == [
        "10 %", "25 %", "50 %", "100 %",
    ]  # fmt: skip
    assert "needs an approval" in stages.nth(3).inner_text()
    assert page.is_disabled("#cmd-pause-button") and page.is_enabled("#cmd-start-button")
    assert log_whats(console) == ["create"]

    page.click("#cmd-start-button")
    page.locator("#rollout-notice", has_text="start: the rollout is running").wait_for()
    current = page.locator("#rollout-timeline li[aria-current=step]")
    assert "10 %" in current.inner_text() and "entered" in current.inner_text()
    assert page.is_enabled("#cmd-pause-button") and page.is_disabled("#cmd-resume-button")

    page.click("#cmd-pause-button")
    page.locator("#rollout-notice", has_text="pause: the rollout is paused").wait_for()
    assert console.text("#rollout-state") == "paused"
    assert log_whats(console) == ["pause", "start", "create"]

    page.click("#cmd-resume-button")
    page.locator("#rollout-notice", has_text="resume: the rollout is running").wait_for()
    assert log_whats(console) == ["resume", "pause", "start", "create"]
    pause_row = page.locator("#log-table tr[data-what=pause]")
    assert "running at stage 1 → paused at stage 1" in pause_row.inner_text()

    page.click("#back-to-rollouts")
    row = page.locator("#rollouts-table tr[data-rollout]")
    assert row.count() == 1 and "running" in row.inner_text() and "1 of 4, 10 %" in row.inner_text()
    assert not [log for log in console.logs if "PAGE ERROR" in log or "Refused" in log]


def test_a_command_the_state_no_longer_allows_is_refused_in_words(
    console: Console, reelout: LiveServer
) -> None:
    rollout = from_template(reelout, "use_video_cache")
    api_command(reelout, rollout, "start")
    page = console.page
    page.goto(f"{reelout.url}/console/rollouts/{rollout}")
    api_command(reelout, rollout, "pause")  # the controller (or a colleague) paused it meanwhile
    page.click("#cmd-pause-button")
    console.wait("$('cmd-pause-error').textContent.includes('ROLLOUT_STATE_CONFLICT')")
    assert "it allows resume" in console.text("#cmd-pause-error")
    assert console.text("#rollout-state") == "running"  # the page as it was: reload to see


def test_promote_dismiss_and_roll_back_with_their_reasons(
    console: Console, reelout: LiveServer
) -> None:
    rollout = from_template(reelout, "use_direct_file_upload")
    api_command(reelout, rollout, "start")
    page = console.page
    page.goto(f"{reelout.url}/console/rollouts/{rollout}")

    page.fill("#promote-reason", "the canary is fine")
    page.click("#cmd-promote-button")
    page.locator("#rollout-notice", has_text="running at stage 2 (25%)").wait_for()
    assert "25 %" in page.locator("#rollout-timeline li[aria-current=step]").inner_text()

    page.select_option("#dismiss-metric", "crash_rate")
    page.fill("#dismiss-reason", "a known crash in the old SDK")
    page.click("#cmd-dismiss-button")
    page.locator("#rollout-notice", has_text="dismiss:").wait_for()
    assert "crash_rate (dismissed)" in page.locator("#dismiss-metric").inner_text()

    page.click("#cmd-approve-button")
    page.locator("#rollout-notice", has_text="approve:").wait_for()

    page.fill("#rollback-reason", "uploads stall on Safari")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#cmd-rollback-button")
    page.locator("#rollout-notice", has_text="the rollout is rolled_back").wait_for()
    assert console.text("#rollout-state") == "rolled back"
    assert page.locator("#rollout-commands button:enabled").count() == 0
    whats = log_whats(console)
    assert whats[:4] == ["rollback", "approve", "dismiss", "promote"]
    rollback_row = page.locator("#log-table tr[data-what=rollback]").inner_text()
    assert "uploads stall on Safari" in rollback_row and "bootstrap" in rollback_row
    with reelout.client() as api:
        flag = api.get(f"/api/v1/environments/{ENV}/flags/use_direct_file_upload").json()
        stored = api.get(f"/api/v1/rollouts/{rollout}").json()
    assert "fractional" not in str(flag.get("targeting"))  # everyone on the control
    assert stored["dismissed"] == {"crash_rate": "a known crash in the old SDK"}


def test_a_guardrail_with_logged_decisions_gets_its_chart(
    console: Console, reelout: LiveServer, clock: ManualClock
) -> None:
    rollout = from_template(reelout, "use_media_kit")
    api_command(reelout, rollout, "start")
    for errors in ((80, 80), (86, 80), (95, 80)):
        clock.advance(600)
        assert record(reelout.runtime, clock, rollout, errors).applied
    page = console.page
    page.goto(f"{reelout.url}/console/rollouts/{rollout}")
    console.wait("document.querySelectorAll('[data-chart][data-drawn]').length >= 1")
    chart = page.locator("#chart-error_rate-harm")
    assert chart.get_attribute("data-drawn") == "yes"
    assert chart.locator("canvas").count() == 1
    legend = chart.locator(".u-legend").inner_text()
    for label in ("upper bound", "lower bound", "estimate", "margin"):
        assert label in legend
    assert "3 decisions" in console.text("#chart-latest-error_rate-harm")
    row = page.locator("#metric-table tr[data-metric=error_rate]")
    assert "4000 / 4000" in row.inner_text()
    assert not [log for log in console.logs if "PAGE ERROR" in log]


@pytest.mark.parametrize("width", [390, 1280])
def test_both_pages_pass_axe_and_fit_a_phone(
    browser: Browser, reelout: LiveServer, clock: ManualClock, width: int
) -> None:
    """With data in them (a list, a running rollout with verdicts, a chart and a log)."""
    flag = {390: "use_video_preload", 1280: "use_adaptive_bitrate"}[width]
    rollout = from_template(reelout, flag)
    api_command(reelout, rollout, "start")
    clock.advance(60)
    assert record(reelout.runtime, clock, rollout, (80, 80)).applied
    context = browser.new_context(viewport={"width": width, "height": 844}, bypass_csp=True)
    try:
        page = context.new_page()
        page.goto(reelout.url + "/console/login")
        page.fill("#key", ADMIN_TOKEN)
        page.click("#login")
        page.wait_for_url(reelout.url + "/console")
        for path in ("/rollouts", f"/rollouts/{rollout}"):
            page.goto(reelout.url + "/console" + path)
            page.wait_for_load_state("networkidle")
            assert page.locator("#rollouts-table tr[data-rollout], #metric-table").count() >= 1
            width_now = page.evaluate("() => document.documentElement.scrollWidth")
            assert width_now <= width, f"{path} is {width_now} px wide at {width} px"
            assert axe_violations(page) == [], path
            assert page.evaluate(UNREACHABLE_ACTIONS) == []
    finally:
        context.close()
