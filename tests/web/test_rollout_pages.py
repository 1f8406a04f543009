"""The console's Rollouts pages over HTTP, on a live server with the seed's flags: the list, both
ways of creating a rollout and their refusals, the timeline, the commands (only those the state
allows, refusals where the button is), the latest verdicts and a chart per guardrail from
decisions the real decision function made, and the log newest first, paged."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from reelout.clock import ManualClock
from reelout.rollouts import service
from reelout.rollouts.decide import ArmData
from reelout.runtime import Runtime
from reelout.telemetry.sums import Sums
from tests.support.live import LiveServer, live_server_fixture
from tests.support.ticks import decide_on
from tests.web.test_flag_pages import Console

server = live_server_fixture(manual_clock=True)
PAGE = "/console/rollouts"
FLAG = "use_tus_upload"
ENV = "production"
TEMPLATE = {"flag": FLAG, "environment": ENV, "treatment": "on", "control": "off"}


@pytest.fixture
def console(server: LiveServer) -> Iterator[Console]:
    with httpx.Client(base_url=server.url, timeout=10, follow_redirects=False) as web:
        yield Console(web)


@pytest.fixture
def api(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


# ---- helpers (the browser test uses them too) --------------------------------------------------


def rate(hits: int, n: int) -> Sums:
    """A proportion's sums: `hits` of `n` units count 1."""
    return Sums(n=n, x=hits, x2=hits, d=n, d2=n, xd=hits)


def record(
    rt: Runtime, clock: ManualClock, rollout: int, errors: tuple[int, int], n: int = 4000
) -> service.Recorded:
    """One controller tick on given evidence: `n` units per arm, `errors` = (treatment,
    control) failed actions among them (`ticks.decide_on`)."""
    treated, control = (ArmData(n, {"error_rate": rate(e, n)}) for e in errors)
    return decide_on(rt, clock, rollout, treated, control)


def chart_data(page: str, chart_id: str) -> dict[str, Any]:
    found = re.search(
        rf'id="{chart_id}"[^>]*>\s*<script type="application/json">(.*?)</script>', page, re.S
    )
    assert found, f"no chart {chart_id}"
    data: dict[str, Any] = json.loads(html.unescape(found.group(1)))
    return data


def create(console: Console, **given: str) -> int:
    made = console.act(f"{PAGE}/from-template", "create-template", **(TEMPLATE | given))
    assert made.status_code == 204, made.text
    target = made.headers["hx-redirect"]
    assert target.startswith(PAGE + "/")
    return int(target.rsplit("/", 1)[1])


def command(console: Console, rollout: int, name: str, **form: Any) -> httpx.Response:
    return console.act(f"{PAGE}/{rollout}/{name}", f"cmd-{name}", **form)


def enabled(page: str) -> set[str]:
    """The commands whose button the page enables."""
    buttons = re.findall(r'<button type="submit"[^>]*id="cmd-(\w+)-button"([^>]*)>', page)
    return {name for name, rest in buttons if "disabled" not in rest}


# ---- the list and creating ---------------------------------------------------------------------


def test_the_page_is_in_the_navigation_and_needs_a_session(console: Console) -> None:
    anonymous = httpx.get(console.web.base_url.join(PAGE), timeout=10)
    assert anonymous.status_code == 303 and anonymous.headers["location"] == "/console/login"
    page = console.get(PAGE)
    assert page.status_code == 200, page.text
    assert 'href="/console/rollouts" aria-current="page">Rollouts</a>' in page.text
    assert "No rollouts yet" in page.text
    assert f'<option value="{FLAG}">' in page.text  # the environment's flags to pick from


def test_a_rollout_from_the_template_is_listed_with_its_plan(
    console: Console, api: httpx.Client
) -> None:
    rollout = create(console)
    stored = api.get(f"/api/v1/rollouts/{rollout}").json()
    assert stored["state"] == "pending" and stored["created_by"] == "bootstrap"
    assert [s["percent"] for s in stored["plan"]["stages"]] == [10, 25, 50, 100]
    listed = console.get(PAGE).text
    row = re.search(rf'<tr data-rollout="{rollout}" data-state="pending">(.*?)</tr>', listed, re.S)
    assert row, listed
    assert f"<code>{FLAG}</code>" in row.group(1) and ENV in row.group(1)
    assert "1 of 4, 10 %" in row.group(1) and "none yet" in row.group(1)


@pytest.mark.parametrize(
    ("given", "code"),
    [
        ({"flag": "no_such_flag"}, "FLAG_NOT_FOUND"),
        ({"treatment": "blue"}, "UNKNOWN_VARIANT"),
        ({"environment": "staging"}, "UNKNOWN_ENVIRONMENT"),
        ({"control": "on"}, "INVALID_PLAN"),
    ],
)
def test_a_refused_template_says_why_where_the_form_is(
    console: Console, api: httpx.Client, given: dict[str, str], code: str
) -> None:
    refused = console.act(f"{PAGE}/from-template", "create-template", **(TEMPLATE | given))
    assert refused.status_code in (400, 404, 409), refused.text
    assert refused.headers["hx-retarget"] == "#create-template-error"
    assert f"<strong>{code}</strong>" in refused.text, refused.text
    assert api.get("/api/v1/rollouts").json()["rollouts"] == []


def test_a_second_live_rollout_of_the_flag_is_refused(console: Console) -> None:
    first = create(console)
    refused = console.act(f"{PAGE}/from-template", "create-template", **TEMPLATE)
    assert refused.status_code == 409
    assert "<strong>ROLLOUT_EXISTS</strong>" in refused.text and f"rollout {first}" in refused.text


PASTED = """\
rollout:
  flag: use_tus_upload
  environment: production
  treatment: "on"
  control: {variation: "off"}
  stages:
    - {percent: 20, min_duration: 1h}
    - {percent: 100, min_duration: 1d, monitor_only: true}
  guardrails:
    - {metric: error_rate, role: guardrail, vs_control: {margin_abs: 0.01}}
"""


def test_a_pasted_yaml_plan_is_stored_as_the_json_it_reads_as(
    console: Console, api: httpx.Client
) -> None:
    made = console.act(f"{PAGE}/from-plan", "create-plan", plan=PASTED)
    assert made.status_code == 204, made.text
    rollout = int(made.headers["hx-redirect"].rsplit("/", 1)[1])
    stored = api.get(f"/api/v1/rollouts/{rollout}").json()
    assert [s["percent"] for s in stored["plan"]["stages"]] == [20, 100]
    assert stored["plan"]["stats"]["alpha"] == 0.05  # the defaults written out
    assert stored["plan"]["stages"][0]["min_duration"] == "1h"
    page = console.get(f"{PAGE}/{rollout}").text
    assert page.count('class="stage stage-ahead"') == 2


def test_a_pasted_json_plan_is_stored_exactly_as_given(console: Console, api: httpx.Client) -> None:
    plan = {
        "flag": FLAG, "environment": ENV, "treatment": "on", "control": {"variation": "off"},
        "stages": [{"percent": 50, "min_duration": "2h"}], "guardrails": [],
    }  # fmt: skip
    made = console.act(f"{PAGE}/from-plan", "create-plan", plan=json.dumps(plan))
    assert made.status_code == 204, made.text
    rollout = int(made.headers["hx-redirect"].rsplit("/", 1)[1])
    assert api.get(f"/api/v1/rollouts/{rollout}").json()["plan"] == plan


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (PASTED.replace("percent: 20", "percent: 200"), "stages[0].percent"),
        ("flag: [unclosed", "INVALID_PLAN"),
        ("", "INVALID_PLAN"),
        ("[" * 200 + "]" * 200, "JSON_TOO_DEEP"),
    ],
)
def test_a_refused_plan_names_its_problems(console: Console, text: str, words: str) -> None:
    refused = console.act(f"{PAGE}/from-plan", "create-plan", plan=text)
    assert refused.status_code == 400, refused.text
    assert refused.headers["hx-retarget"] == "#create-plan-error"
    assert words in refused.text and "<strong>" in refused.text


# ---- one rollout: the timeline and the commands ------------------------------------------------


def test_the_timeline_and_the_buttons_follow_the_state(
    console: Console, api: httpx.Client, clock: ManualClock
) -> None:
    rollout = create(console)
    page = console.get(f"{PAGE}/{rollout}").text
    assert page.count('class="stage stage-ahead"') == 4 and "not entered" in page
    assert "min 2d, max 7d, warmup 15m, 3823 units per arm" in page  # the template's 10 %
    assert "needs an approval" in page  # before 100 %
    assert enabled(page) == {"start", "abort"}
    stage = re.sub(r"<[^>]+>", "", page.split('id="rollout-stage">', 1)[1].split("</dd>", 1)[0])
    assert f"get on (served as on~r{rollout}), as many get off (served as off~r{rollout})" in (
        " ".join(stage.split()))  # fmt: skip

    started = command(console, rollout, "start")
    assert started.status_code == 200, started.text
    assert "start: the rollout is running at stage 1 (10%)." in started.text
    assert f"entered {clock.now():%Y-%m-%d %H:%M}" in started.text
    assert 'data-status="current" aria-current="step"' in started.text
    assert enabled(started.text) == {"pause", "promote", "approve", "dismiss", "rollback", "abort"}

    clock.advance(3600)
    paused = command(console, rollout, "pause")
    assert enabled(paused.text) == {"resume", "promote", "approve", "dismiss", "rollback", "abort"}
    again = command(console, rollout, "pause")  # a page loaded before the pause
    assert again.status_code == 409
    assert again.headers["hx-retarget"] == "#cmd-pause-error"
    assert "<strong>ROLLOUT_STATE_CONFLICT</strong>" in again.text
    assert "it allows resume" in again.text
    resumed = command(console, rollout, "resume")
    assert "resume: the rollout is running" in resumed.text
    whats = [e["what"] for e in api.get(f"/api/v1/rollouts/{rollout}/log").json()["entries"]]
    assert whats == ["create", "start", "pause", "resume"]
    log = re.findall(r'data-kind="command" data-what="(\w+)"', resumed.text)
    assert log == ["resume", "pause", "start", "create"]  # newest first


def test_promote_and_dismiss_need_a_reason_and_promote_the_version_shown(
    console: Console, api: httpx.Client
) -> None:
    rollout = create(console)
    version = command(console, rollout, "start").text
    shown = int(re.search(r'data-version="(\d+)"', version).group(1))  # type: ignore[union-attr]
    unsaid = command(console, rollout, "promote", reason="", version=shown)
    assert unsaid.status_code == 400 and "REASON_REQUIRED" in unsaid.text
    assert unsaid.headers["hx-retarget"] == "#cmd-promote-error"
    command(console, rollout, "dismiss", metric="crash_rate", reason="a known crash in the old SDK")
    stale = command(console, rollout, "promote", reason="the canary is fine", version=shown)
    assert stale.status_code == 412 and "STALE_ROLLOUT" in stale.text
    promoted = command(console, rollout, "promote", reason="the canary is fine")
    assert "running at stage 2 (25%)" in promoted.text, promoted.text
    assert "dismissed: a known crash in the old SDK" not in promoted.text  # no verdicts yet
    assert "crash_rate (dismissed)" in promoted.text
    approved = command(console, rollout, "approve", stage=3)
    assert "approved" in approved.text
    stored = api.get(f"/api/v1/rollouts/{rollout}").json()
    assert stored["approvals"] == [3] and stored["dismissed"] == {
        "crash_rate": "a known crash in the old SDK"
    }
    entries = api.get(f"/api/v1/rollouts/{rollout}/log").json()["entries"]
    assert [e["reason"] for e in entries if e["what"] == "promote"] == ["the canary is fine"]


def test_a_command_needs_the_pages_csrf_token(console: Console, api: httpx.Client) -> None:
    rollout = create(console)
    headers = {**console.cookie, "HX-Request": "true", "HX-Trigger": "cmd-start"}
    refused = console.web.post(f"{PAGE}/{rollout}/start", headers=headers)
    assert refused.status_code == 403 and "CSRF_TOKEN_MISSING" in refused.text
    assert api.get(f"/api/v1/rollouts/{rollout}").json()["state"] == "pending"
    unknown = command(console, rollout, "advance")  # the controller's, not the operator's
    assert unknown.status_code == 400 and "NOT_AN_OPERATOR_COMMAND" in unknown.text
    assert command(console, rollout, "nonsense").status_code == 422
    missing = command(console, 999, "start")
    assert missing.status_code == 404 and "ROLLOUT_NOT_FOUND" in missing.text


def test_a_rollout_that_is_over_offers_no_command(console: Console) -> None:
    rollout = create(console)
    command(console, rollout, "start")
    rolled = command(console, rollout, "rollback", reason="uploads stall")
    assert "rollback: the rollout is rolled_back" in rolled.text
    assert enabled(rolled.text) == set()
    assert "none: the rollout is over" in rolled.text and "last stage" in rolled.text


# ---- decisions: the latest verdicts and a chart per guardrail ---------------------------------


def test_logged_decisions_make_the_table_and_a_chart_of_the_harm_against_the_margin(
    console: Console, server: LiveServer, clock: ManualClock
) -> None:
    rollout = create(console)
    command(console, rollout, "start")
    times = []
    for errors in ((80, 80), (84, 80), (90, 80)):  # 2 % each, then the treatment drifts up
        clock.advance(600)
        times.append(int(clock.now().timestamp()))
        assert record(server.runtime, clock, rollout, errors).applied
    page = console.get(f"{PAGE}/{rollout}").text

    row = re.search(r'<tr data-metric="error_rate" data-state="(\w+)">(.*?)</tr>', page, re.S)
    assert row, page
    assert row.group(1) == "inconclusive"
    cells = html.unescape(row.group(2))
    assert "4000 / 4000" in cells and "asymptotic_cs" in cells
    assert "+0.25 pp" in cells  # 90 - 80 of 4000 each
    assert 'guardrail "error_rate" inconclusive: harm lower bound' in cells
    assert "collecting:" in page  # the last decision's first reason

    data = chart_data(page, "chart-error_rate-harm")
    assert data["x"] == times
    upper, lower, estimate, margin = data["ys"]
    assert [s["label"] for s in data["series"]] == [
        "upper bound",
        "lower bound",
        "estimate",
        "margin",
    ]
    assert data["bands"] == [[0, 1]]
    assert margin == [0.0, 0.0, 0.0]
    assert estimate == pytest.approx([0.0, 0.1, 0.25])  # percentage points
    assert all(lo < est < up for lo, est, up in zip(lower, estimate, upper, strict=True))
    assert 'id="chart-crash_rate-harm"' not in page  # no crash data logged: no chart
    assert "3 decisions" in page


def test_a_rollout_without_decisions_says_so(console: Console) -> None:
    rollout = create(console)
    page = console.get(f"{PAGE}/{rollout}").text
    assert 'id="no-charts"' in page and 'id="no-verdicts"' in page
    assert "none yet (the controller decides" in page


# ---- the log, newest first and paged -----------------------------------------------------------


def test_the_log_pages_back_with_the_services_cursor(
    console: Console, server: LiveServer, clock: ManualClock
) -> None:
    rollout = create(console)
    command(console, rollout, "start")
    for _ in range(25):  # 25 hold decisions: more than a page
        clock.advance(60)
        assert record(server.runtime, clock, rollout, (80, 80)).applied
    page = console.get(f"{PAGE}/{rollout}").text
    first = re.findall(r'<tr data-log="(\d+)"', page)
    assert len(first) == 20 and first == sorted(first, key=int, reverse=True)
    more = re.search(r'hx-get="([^"]+/log\?cursor=[^"]+)"', page)
    assert more, "no button for older entries"
    older = console.get(html.unescape(more.group(1)))
    assert older.status_code == 200, older.text
    rest = re.findall(r'<tr data-log="(\d+)"', older.text)
    assert len(rest) == 7 and int(rest[0]) < int(first[-1])  # 25 decisions + start + create
    assert 'id="log-more"' not in older.text
    assert re.findall(r'data-what="(\w+)"', older.text)[-2:] == ["start", "create"]
