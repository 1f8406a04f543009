"""The Flags page in headless Chromium: toggle, kill and raise a split, and OFREP answers
change with each; the JSON editor shows a schema error at its pointer; 390 px wide works."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser

from tests.support.live import LiveServer, live_server_fixture
from tests.support.settings import ADMIN_TOKEN
from tests.support.waiting import wait_until
from tests.web.conftest import Console

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("console-browser")]

# a fresh install (the template is seeded) of its own; the console fixture logs in to it
server = live_server_fixture(scope="module", folder="flag-pages")
KEY = "use_direct_file_upload"
USERS = [f"user-{n}" for n in range(200)]


@pytest.fixture(scope="module")
def ofrep(server: LiveServer) -> Iterator[httpx.Client]:
    """An app's view: OFREP with a client key of production."""
    with server.client() as api:
        body = {"scope": "client", "environment": "production", "name": "flags-page-app"}
        made = api.post("/api/v1/keys", json=body)
        assert made.status_code == 201, made.text
    with server.client(token=made.json()["key"]) as client:
        yield client


def answer(ofrep: httpx.Client, user: str) -> dict[str, Any]:
    reply = ofrep.post(f"/ofrep/v1/evaluate/flags/{KEY}", json={"context": {"targetingKey": user}})
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body


def users_on(ofrep: httpx.Client) -> set[str]:
    return {user for user in USERS if answer(ofrep, user).get("value") is True}


def row_state(console: Console) -> str | None:
    return console.page.get_attribute(f"#flag-{KEY}", "data-state")


def last_audit(server: LiveServer) -> dict[str, Any]:
    with server.client() as api:
        entry: dict[str, Any] = api.get("/api/v1/audit", params={"limit": 1}).json()["entries"][0]
    return entry


def set_percent(console: Console, percent: int) -> None:
    console.page.fill(f"#percent-{KEY}", str(percent))
    console.page.fill(f"#rollout-reason-{KEY}", f"to {percent}%")
    console.page.click(f"#rollout-{KEY} button")
    console.page.wait_for_selector(f"#targeting-{KEY}:has-text('fractional {percent}/')")


def test_toggle_kill_and_a_rising_split_change_what_ofrep_answers(
    console: Console, server: LiveServer, ofrep: httpx.Client
) -> None:
    page = console.page
    page.goto(server.url + "/console/flags")
    page.select_option("#env-picker", "production")
    page.click(".env-picker button")
    page.wait_for_url(server.url + "/console/flags/production")
    assert row_state(console) == "ENABLED"
    assert users_on(ofrep) == set(), "the template's flags are off"

    set_percent(console, 20)
    wait_until(lambda: len(users_on(ofrep)) > 0, message="the 20% split to reach OFREP")
    first = users_on(ofrep)
    assert 15 <= len(first) <= 65
    assert answer(ofrep, sorted(first)[0])["reason"] == "SPLIT"
    set_percent(console, 60)
    wait_until(lambda: len(users_on(ofrep)) > len(first), message="the 60% split")
    raised = users_on(ofrep)
    assert first <= raised, "raising the split only adds users"
    assert 90 <= len(raised) <= 150
    assert page.get_attribute(f"#split-{KEY}", "aria-label") == "on 60%, off 40%"

    page.click(f"#toggle-{KEY} button")  # turn off
    page.wait_for_selector(f"#flag-{KEY}[data-state=DISABLED]")
    wait_until(lambda: answer(ofrep, USERS[0])["reason"] == "DISABLED", message="the toggle")
    page.click(f"#toggle-{KEY} button")  # and on again: the same users as before
    page.wait_for_selector(f"#flag-{KEY}[data-state=ENABLED]")
    wait_until(lambda: users_on(ofrep) == raised, message="the flag back on")

    page.fill(f"#kill-reason-{KEY}", "uploads fail on iOS 17")
    page.once("dialog", lambda dialog: dialog.accept())  # the confirmation
    page.click(f"#kill-{KEY} button")
    page.wait_for_selector(f"#flag-{KEY}[data-state=DISABLED]")
    wait_until(lambda: answer(ofrep, USERS[1])["reason"] == "DISABLED", message="the kill")
    assert users_on(ofrep) == set()
    entry = last_audit(server)
    assert (entry["action"], entry["actor"], entry["reason"]) == (
        "kill",
        "bootstrap",
        "uploads fail on iOS 17",
    )
    assert not [line for line in console.logs if "PAGE ERROR" in line or "CSP" in line]


def test_a_refused_kill_without_reason_and_an_error_in_place(
    console: Console, server: LiveServer
) -> None:
    page = console.page
    page.goto(server.url + "/console/flags/development")
    page.fill("#percent-enable_debug_logs", "10")
    page.click("#rollout-enable_debug_logs button")
    page.wait_for_selector("#targeting-enable_debug_logs:has-text('fractional 10/90')")
    page.goto(server.url + "/console/flags/development")
    assert page.query_selector("#percent-use_tus_upload"), "the beta rule takes a percentage"
    page.fill("#kill-reason-beta_mode", "")
    page.click("#kill-beta_mode button")  # the browser holds the form: a reason is required
    assert page.evaluate(
        "() => document.getElementById('kill-reason-beta_mode').validity.valueMissing"
    )
    assert row_state_of(console, "beta_mode") == "ENABLED"


def row_state_of(console: Console, key: str) -> str | None:
    return console.page.get_attribute(f"#flag-{key}", "data-state")


def test_the_editor_shows_a_schema_error_at_its_pointer(
    console: Console, server: LiveServer
) -> None:
    page = console.page
    page.goto(server.url + "/console/flags/preview")
    page.click("#edit-use_media_kit")
    page.wait_for_url(server.url + "/console/flags/preview/use_media_kit/edit")
    text = page.input_value("#definition")
    page.fill("#definition", text.replace('"defaultVariant": "off"', '"defaultVariant": "maybe"'))
    page.click("#flag-editor button[type=submit]")
    page.wait_for_selector("#faults code.pointer")
    assert page.text_content("#faults code.pointer") == "/defaultVariant"
    assert "maybe" in page.input_value("#definition"), "the text stays for fixing"
    assert page.get_attribute("#definition", "aria-invalid") == "true"

    page.fill("#definition", text.replace('"defaultVariant": "off"', '"defaultVariant": "on"'))
    page.fill("#edit-reason", "default on in preview")
    page.click("#flag-editor button[type=submit]")
    page.wait_for_selector("#saved")
    assert "preview is now at revision 2" in (page.text_content("#saved") or "")
    assert page.query_selector("#faults") is None
    assert last_audit(server)["reason"] == "default on in preview"


def test_the_flags_pages_fit_390_px(browser: Browser, server: LiveServer) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844})
    try:
        page = context.new_page()
        page.goto(server.url + "/console/login")
        page.fill("#key", ADMIN_TOKEN)
        page.click("#login")
        page.wait_for_url(server.url + "/console")
        for path in ("/console/flags/development", "/console/flags/production/beta_mode/edit"):
            page.goto(server.url + path)
            width = page.evaluate("() => document.documentElement.scrollWidth")
            assert width <= 390, f"{path} is {width} px wide at 390 px"
        page.goto(server.url + "/console/flags/development")
        assert page.is_visible("#toggle-beta_mode button")
    finally:
        context.close()
