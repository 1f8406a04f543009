"""The console's rollout report over HTTP, for a rollout driven through real decisions on real
telemetry (tests/rollouts/test_report.py's `drive`): linked from the rollout's page, the stages
with their durations, units and decisions, the seed's KPI table against its targets, the latest
verdicts, a chart per guardrail, the log oldest first, and no command to click."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator

import httpx
import pytest

from reelout.clock import ManualClock
from tests.rollouts.test_report import drive
from tests.support.live import LiveServer, live_server_fixture
from tests.web.test_flag_pages import Console
from tests.web.test_rollout_pages import chart_data

server = live_server_fixture(manual_clock=True, telemetry_rollup_delay_seconds=0)
PAGE = "/console/rollouts"


@pytest.fixture
def console(server: LiveServer) -> Iterator[Console]:
    with httpx.Client(base_url=server.url, timeout=10, follow_redirects=False) as web:
        yield Console(web)


def row(page: str, table: str, key: str, value: str) -> str:
    """The text of the row of `table` whose `key` attribute is `value`."""
    body = page.split(f'id="{table}"', 1)[1].split("</table>", 1)[0]
    found = re.search(rf'<tr {key}="{value}"[^>]*>(.*?)</tr>', body, re.S)
    assert found, f"no row {key}={value} in {table}"
    return html.unescape(re.sub(r"<[^>]+>", " ", found.group(1)))


def test_the_report_page_of_a_rolled_back_rollout(
    console: Console, server: LiveServer, clock: ManualClock
) -> None:
    rid, at = drive(server, clock)
    rollout_page = console.get(f"{PAGE}/{rid}").text
    assert f'href="{PAGE}/{rid}/report" id="rollout-report-link"' in rollout_page

    reply = console.get(f"{PAGE}/{rid}/report")
    assert reply.status_code == 200, reply.text
    assert "script-src 'self'" in reply.headers["content-security-policy"]
    page = reply.text
    assert f"<title>Rollout {rid} report: use_tus_upload in production" in page
    said = page.split('id="report-arms">', 1)[1].split("</dd>", 1)[0]
    arms = " ".join(html.unescape(re.sub(r"<[^>]+>", "", said)).split())
    assert arms.startswith(f"on (served as on~r{rid}) (treatment) against off (served as off~")
    assert 'aria-current="page">Rollouts</a>' in page  # in the console's navigation
    assert 'id="report-print" data-print' in page and 'class="no-print"' in page
    assert 'id="rollout-commands"' not in page and "hx-post" not in page  # a report, no actions

    first = " ".join(row(page, "stage-table", "data-stage", "0").split())
    assert "1: 10 %" in first and "min 2h" in first
    assert f"{at['start']:%Y-%m-%d %H:%M}" in first and f"{at['advance']:%Y-%m-%d %H:%M}" in first
    assert "2h12m" in first and "4000 / 4000" in first and "advance 1, hold 1" in first
    second = " ".join(row(page, "stage-table", "data-stage", "1").split())
    assert "10m" in second and "rollback 1" in second
    assert "—" in row(page, "stage-table", "data-stage", "3")
    assert 'data-stage="3" data-status="not-entered"' in page

    success = " ".join(row(page, "report-kpi-table", "data-metric", "upload_success_rate").split())
    assert f"off (served as off~r{rid}) : 85.0 %" in success and "n = 100" in success
    assert f"on (served as on~r{rid}) : 97.0 %" in success
    assert "+12.0 pp" in success and "improvement" in success and success.endswith("pass")
    slow = row(page, "report-kpi-table", "data-metric", "upload_seconds_100mb")
    assert "160.0 s" in slow and slow.split()[-1] == "fail"

    guard = row(page, "report-metric-table", "data-metric", "error_rate")
    assert "fail" in guard and "4000 / 4000" in guard
    crash = row(page, "report-metric-table", "data-metric", "crash_rate")
    assert "dismissed: no crash reports from this SDK yet" in crash

    frozen = html.unescape(page.split('id="report-frozen"')[1].split("</section>")[0])
    assert "Rolled back on" in frozen and "(decision)" in frozen and "2 (25 %)" in frozen
    assert 'guardrail "error_rate" FAIL: harm lower bound' in frozen

    success_chart = chart_data(page, "chart-kpi-upload_success_rate")
    assert [s["label"] for s in success_chart["series"]] == [
        f"off (served as off~r{rid})",
        f"on (served as on~r{rid})",
    ]  # not the excluded; fmt: skip
    assert success_chart["x"][1] - success_chart["x"][0] == 120  # 2 min buckets over 2h22m
    off, on = ([v for v in ys if v is not None] for ys in success_chart["ys"])
    assert off == pytest.approx([85.0]) and on == pytest.approx([97.0])  # the minute they came
    assert 'id="chart-kpi-video_startup_seconds"' not in page  # no data, no chart

    data = chart_data(page, "chart-error_rate-harm")
    assert len(data["x"]) == 3 and data["x"][-1] == int(at["rollback"].timestamp())
    whats = re.findall(r'data-kind="\w+" data-what="(\w+)"', page.split('id="report-log"')[1])
    assert whats == ["create", "start", "dismiss", "hold", "advance", "advance", "rollback",
                     "rollback"]  # fmt: skip
    assert '"use_tus_upload"' in html.unescape(page.split('id="report-plan-json"')[1])


def test_a_pending_rollouts_report_says_there_is_no_window_yet(
    console: Console, server: LiveServer
) -> None:
    with server.client() as api:
        body = {"flag": "use_tus_upload", "environment": "production", "treatment": "on",
                "control": "off"}  # fmt: skip
        rid = api.post("/api/v1/rollouts/from-template", json=body).json()["id"]
    page = console.get(f"{PAGE}/{rid}/report").text
    assert "No analysis window yet: the rollout has not started." in page
    assert 'id="report-no-charts"' in page and 'id="report-no-verdicts"' in page
    assert 'id="report-frozen"' not in page
    assert page.count('data-status="not-entered"') == 4


def test_the_report_needs_a_session_and_a_rollout(console: Console) -> None:
    anonymous = httpx.get(console.web.base_url.join(f"{PAGE}/1/report"), timeout=10)
    assert anonymous.status_code == 303 and anonymous.headers["location"] == "/console/login"
    missing = console.get(f"{PAGE}/99/report")
    assert missing.status_code == 404 and "ROLLOUT_NOT_FOUND" in missing.text
