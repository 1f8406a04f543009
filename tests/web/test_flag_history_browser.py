"""The flags tabs in headless Chromium: promote with the difference shown and see the target's
OFREP answers change, revert a revision, cancel a scheduled change saying why, see the exposures
chart drawn, and fit 390 px."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Dialog

from tests.support.live import LiveServer
from tests.support.waiting import wait_until
from tests.web.conftest import Console
from tests.web.test_login import new_key

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("console-browser")]

API = "/api/v1/environments"
FLAGS = "/console/flags"


def client_key(server: LiveServer, environment: str) -> str:
    body = {"scope": "client", "name": f"{environment}-app", "environment": environment}
    with server.client() as api:
        reply = api.post("/api/v1/keys", json=body)
    assert reply.status_code == 201, reply.text
    key: str = reply.json()["key"]
    return key


def ofrep(server: LiveServer, key: str, flag: str) -> dict[str, Any]:
    """What OFREP answers an app of the key's environment (status and body)."""
    with server.client(key) as app:
        reply = app.post(
            f"/ofrep/v1/evaluate/flags/{flag}", json={"context": {"targetingKey": "user-1"}}
        )
    return {"status": reply.status_code, **reply.json()}


def put_flag(server: LiveServer, env: str, key: str, flag: dict[str, Any]) -> int:
    with server.client() as api:
        reply = api.put(f"{API}/{env}/flags/{key}", json=flag, params={"reason": "test"})
    assert reply.status_code == 200, reply.text
    return int(reply.headers["etag"].strip('"').rsplit("-r", 1)[1])


def head(server: LiveServer, env: str) -> int:
    with server.client() as api:
        revision: int = api.get(f"{API}/{env}/revisions").json()["revisions"][0]["revision"]
    return revision


def accept(dialog: Dialog) -> None:
    dialog.accept()


def test_promote_with_the_difference_shown_then_revert_it(
    console: Console, server: LiveServer
) -> None:
    page = console.page
    page.on("dialog", accept)  # the confirm of each action
    preview_app = client_key(server, "preview")
    put_flag(server, "preview", "keep_me", {"state": "ENABLED", "variants": {"a": 1},
                                            "defaultVariant": "a"})  # fmt: skip
    before = head(server, "preview")
    put_flag(server, "development", "new_player", {"state": "ENABLED",
             "variants": {"on": True, "off": False}, "defaultVariant": "on"})  # fmt: skip
    assert ofrep(server, preview_app, "new_player")["status"] == 404

    page.goto(server.url + f"{FLAGS}/development/promote")
    assert page.input_value("#promote-target") == "preview"  # the next environment
    patch = console.text("#promote-patch")
    assert '"/flags/new_player"' in patch and '"/flags/keep_me"' in patch
    assert "Added new_player" in console.text("#promotion")
    assert ofrep(server, preview_app, "new_player")["status"] == 404  # shown, not applied

    page.fill("#promote-reason", "new player verified in development")
    page.click("#promote-apply")
    page.wait_for_selector("#promote-done")
    assert "preview is now at revision" in console.text("#promote-done")
    wait_until(lambda: ofrep(server, preview_app, "new_player").get("value") is True,
               message="preview's OFREP to serve the promoted flag")  # fmt: skip

    page.goto(server.url + f"{FLAGS}/preview/revisions")
    row = page.locator(f'tr[data-revision="{before + 1}"]')
    assert "promote from development" in (row.text_content() or "")
    assert "new player verified in development" in (row.text_content() or "")
    page.click(f'tr[data-revision="{before}"] a')
    page.wait_for_selector("#revert-form")
    assert "Removed new_player" in console.text("#revert")
    page.click("#revert-button")  # no reason yet: the browser asks for one
    assert page.locator("#revert-done").count() == 0
    page.fill("#revert-reason", "back out the promotion")
    page.click("#revert-button")
    page.wait_for_selector("#revert-done")
    wait_until(lambda: ofrep(server, preview_app, "new_player")["status"] == 404,
               message="preview's OFREP to forget the reverted flag")  # fmt: skip
    assert ofrep(server, preview_app, "keep_me")["value"] == 1
    assert not [line for line in console.logs if "PAGE ERROR" in line], console.logs


def test_an_error_of_an_action_is_shown_in_words_in_place(
    console: Console, server: LiveServer
) -> None:
    page = console.page
    page.on("dialog", accept)
    put_flag(server, "development", "moving", {"state": "ENABLED", "variants": {"a": 1},
                                               "defaultVariant": "a"})  # fmt: skip
    page.goto(server.url + f"{FLAGS}/development/promote?to=production")
    put_flag(server, "development", "moving", {"state": "DISABLED", "variants": {"a": 1},
                                               "defaultVariant": "a"})  # fmt: skip
    page.fill("#promote-reason", "too late")
    page.click("#promote-apply")
    page.wait_for_selector("#promote-form-error:not(:empty)")
    assert "STALE_FLAG_SET" in console.text("#promote-form-error")
    assert "development changed while you were deciding" in console.text("#promote-form-error")


def test_the_exposures_chart_is_drawn_from_reported_exposures(
    console: Console, server: LiveServer
) -> None:
    put_flag(server, "production", "checkout", {"state": "ENABLED",
             "variants": {"new": True, "old": False}, "defaultVariant": "old"})  # fmt: skip
    _, app_key = new_key(server, "client")  # production
    batch = [
        {"flag": "checkout", "variant": variant, "targetingKey": f"user-{n}"}
        for n, variant in enumerate(["new", "new", "old"])
    ]
    with server.client(app_key) as app:
        assert app.post("/api/v1/exposures", json={"exposures": batch}).status_code == 202

    def written() -> bool:
        with server.client() as api:
            reply = api.get(f"{API}/production/exposures", params={"flag": "checkout"})
        return bool(reply.json()["days"])

    wait_until(written, message="the exposures to be written")
    page = console.page
    page.goto(server.url + f"{FLAGS}/production/exposures")
    page.select_option("#exposure-flag", "checkout")
    page.click("#exposure-show")
    page.wait_for_selector("#exposure-chart[data-drawn=yes] canvas")
    legend = console.text("#exposure-chart")
    assert "new" in legend and "old" in legend
    cells = page.locator("#exposure-table tbody tr").first.locator("td").all_text_contents()
    assert cells == ["2", "1"]
    assert not [line for line in console.logs if "PAGE ERROR" in line], console.logs


def schedule_kill(server: LiveServer, env: str, flag: str) -> dict[str, Any]:
    body = {"flag": flag, "action": "kill", "apply_at": "2099-01-01T00:00:00Z", "reason": "t"}
    with server.client() as api:
        reply = api.post(f"{API}/{env}/schedules", json=body)
    assert reply.status_code == 201, reply.text
    made: dict[str, Any] = reply.json()
    return made


def test_cancel_a_scheduled_change_saying_why(console: Console, server: LiveServer) -> None:
    page = console.page
    page.on("dialog", accept)
    put_flag(server, "development", "to_cancel", {"state": "ENABLED", "variants": {"a": 1},
                                                  "defaultVariant": "a"})  # fmt: skip
    made = schedule_kill(server, "development", "to_cancel")
    page.goto(server.url + f"{FLAGS}/development/schedules")
    row = f'tr[data-schedule="{made["id"]}"]'
    page.click(f"{row} button")  # no reason yet: the browser asks for one
    assert page.locator(f'{row}[data-status="pending"]').count() == 1
    page.fill(f"#cancel-reason-{made['id']}", "the launch moved")
    page.click(f"{row} button")
    page.wait_for_selector(f'{row}[data-status="canceled"]')
    assert f"by {made['scheduled_by']}: the launch moved" in console.text(row)
    with server.client() as api:
        after = api.get(f"{API}/development/schedules/{made['id']}").json()
    assert (after["canceled_by"], after["cancel_reason"]) == (made["scheduled_by"],
                                                              "the launch moved")  # fmt: skip
    assert not [line for line in console.logs if "PAGE ERROR" in line], console.logs


def test_each_tab_fits_a_390_px_screen(console: Console, server: LiveServer) -> None:
    put_flag(server, "development", "a_rather_long_flag_key_that_could_push_the_layout_wide",
             {"state": "ENABLED", "variants": {"on": True}, "defaultVariant": "on"})  # fmt: skip
    schedule_kill(server, "development", "a_rather_long_flag_key_that_could_push_the_layout_wide")
    page = console.page
    page.set_viewport_size({"width": 390, "height": 844})
    revision = head(server, "development")
    for tab in ["revisions", f"revisions/{revision}", "promote", "schedules", "stale",
                "exposures"]:  # fmt: skip
        page.goto(server.url + f"{FLAGS}/development/{tab}")
        width = page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= 390, f"{tab} is {width} px wide at 390 px"
