"""The rollout report in Chromium, for a rollout driven through real decisions on real
telemetry: reached from the rollout's page, its guardrail chart drawn by uPlot, axe-core clean
at a desktop's and a phone's width; printed without the console's navigation, the chart drawn
and shrunk to the page; and the CLI's standalone file charting from disk with no server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from reelout.clock import ManualClock
from reelout.rollouts import report as reports
from reelout.web.rollout_report import standalone_html
from tests.rollouts.test_report import drive
from tests.support.live import LiveServer, serving
from tests.support.settings import ADMIN_TOKEN, make_settings
from tests.web.conftest import Console, open_console
from tests.web.test_accessibility import UNREACHABLE_ACTIONS, axe_violations

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("console-browser")]
DRAWN = "document.querySelectorAll('[data-chart][data-drawn]').length >= 3"  # 2 KPIs, 1 guardrail


@pytest.fixture(scope="module")
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(scope="module")
def reelout(tmp_path_factory: pytest.TempPathFactory, clock: ManualClock) -> Iterator[LiveServer]:
    folder: Path = tmp_path_factory.mktemp("rollout-report")
    with serving(make_settings(folder, telemetry_rollup_delay_seconds=0), clock) as live:
        yield live


@pytest.fixture(scope="module")
def rollout(reelout: LiveServer, clock: ManualClock) -> int:
    return drive(reelout, clock)[0]


@pytest.fixture
def console(browser: Browser, reelout: LiveServer) -> Iterator[Console]:
    page = open_console(browser, reelout.url)
    yield page
    page.context.close()


def test_the_report_draws_its_chart_and_prints_without_the_console(
    console: Console, reelout: LiveServer, rollout: int, tmp_path: Path
) -> None:
    page = console.page
    page.goto(f"{reelout.url}/console/rollouts/{rollout}")
    page.click("#rollout-report-link")
    page.wait_for_url(f"**/console/rollouts/{rollout}/report")
    console.wait(DRAWN)
    chart = page.locator("#chart-error_rate-harm")
    assert chart.locator("canvas").count() == 1
    legend = chart.locator(".u-legend").inner_text()
    assert "estimate" in legend and "margin" in legend
    assert "2h12m" in page.locator("#stage-table tr[data-stage='0']").inner_text()
    kpi = page.locator("#report-kpi-table tr[data-metric=upload_success_rate]")
    assert "97.0 %" in kpi.inner_text() and kpi.locator(".result").inner_text() == "pass"
    assert page.locator("header.top nav").is_visible() and page.is_visible("#report-print")
    screen_width = page.evaluate(
        "() => document.querySelector('#chart-error_rate-harm canvas').width"
    )

    page.emulate_media(media="print")
    assert not page.locator("header.top").is_visible()  # no navigation chrome on paper
    assert not page.is_visible("#report-print") and not page.is_visible("#back-to-rollout")
    assert page.is_visible("#report-kpi-table") and page.is_visible("#report-log-table")
    page.evaluate("() => window.dispatchEvent(new Event('beforeprint'))")
    printed = page.evaluate(
        "() => document.querySelector('#chart-error_rate-harm .uplot').getBoundingClientRect().width"
    )
    assert printed <= 640 < screen_width or printed <= screen_width <= 640
    pdf = page.pdf(format="A4")
    assert pdf.startswith(b"%PDF") and len(pdf) > 10_000
    (tmp_path / "report.pdf").write_bytes(pdf)
    page.evaluate("() => window.dispatchEvent(new Event('afterprint'))")
    page.emulate_media(media="screen")
    assert page.locator("header.top").is_visible()
    assert not [log for log in console.logs if "PAGE ERROR" in log or "Refused" in log]


@pytest.mark.parametrize("width", [390, 1280])
def test_the_report_passes_axe_and_fits_a_phone(
    browser: Browser, reelout: LiveServer, rollout: int, width: int
) -> None:
    context = browser.new_context(viewport={"width": width, "height": 900}, bypass_csp=True)
    try:
        page = context.new_page()
        page.goto(reelout.url + "/console/login")
        page.fill("#key", ADMIN_TOKEN)
        page.click("#login")
        page.wait_for_url(reelout.url + "/console")
        page.goto(f"{reelout.url}/console/rollouts/{rollout}/report")
        page.wait_for_load_state("networkidle")
        page.wait_for_function(f"() => {DRAWN}")
        width_now = page.evaluate("() => document.documentElement.scrollWidth")
        assert width_now <= width, f"the report is {width_now} px wide at {width} px"
        assert axe_violations(page) == []
        assert page.evaluate(UNREACHABLE_ACTIONS) == []
    finally:
        context.close()


def test_the_standalone_file_charts_from_disk(
    browser: Browser, reelout: LiveServer, rollout: int, tmp_path: Path
) -> None:
    """What `reelout rollouts report ID --output FILE.html` writes, opened with no server."""
    file = tmp_path / "report.html"
    file.write_text(
        standalone_html(reports.build(reelout.runtime, rollout, charts=True)), encoding="utf-8"
    )
    context = browser.new_context(viewport={"width": 1100, "height": 900}, offline=True)
    try:
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on("request", lambda request: errors.append(f"fetched {request.url}")
                if not request.url.startswith("file:") else None)  # fmt: skip
        page.goto(file.as_uri())
        page.wait_for_function(f"() => {DRAWN}")
        assert page.locator("#chart-error_rate-harm canvas").count() == 1
        assert "97.0 %" in page.locator("#report-kpi-table").inner_text()
        assert page.locator("header.top").count() == 0 and errors == []
        assert axe_violations(page) == []
    finally:
        context.close()
