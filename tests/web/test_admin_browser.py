"""The Keys, Webhooks and Audit pages in Chromium: create a key, copy its secret and use it,
revoke it and see it refused; a test delivery to a local receiver, its attempts, a resend; the
audit trail filtered down to the key; no sideways scrolling at 390 px."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, Dialog

from reelout.clock import SystemClock
from tests.support.live import LiveServer, live_server_fixture
from tests.support.waiting import wait_until
from tests.web.conftest import Console, open_console
from tests.webhooks.receiver import Receiver

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("console-browser")]

server = live_server_fixture(
    scope="module",
    folder="admin-browser",
    embedded_worker=True,
    job_poll_seconds=0.2,
    webhook_allow_networks="127.0.0.0/8",  # the receiver listens on loopback
)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver(SystemClock())
    yield rec
    rec.close()


@pytest.fixture
def console(browser: Browser, server: LiveServer) -> Iterator[Console]:
    page = open_console(browser, server.url)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    yield page
    page.context.close()


def evaluate(server: LiveServer, key: str) -> int:
    """An OFREP bulk evaluation with `key`, as an app would send it: its HTTP status."""
    with httpx.Client(base_url=server.url, timeout=10) as app:
        reply = app.post(
            "/ofrep/v1/evaluate/flags",
            json={"context": {"targetingKey": "user-1"}},
            headers={"Authorization": f"Bearer {key}"},
        )
    return reply.status_code


def answer_prompts(console: Console, text: str) -> None:
    def answer(dialog: Dialog) -> None:
        dialog.accept(text) if dialog.type == "prompt" else dialog.accept()

    console.page.on("dialog", answer)


def test_create_a_key_use_it_and_revoke_it(console: Console, server: LiveServer) -> None:
    page = console.page
    page.goto(server.url + "/console/keys")
    page.fill("#key-name", "browser-app")
    page.select_option("#key-scope", "client")
    page.select_option("#key-environment", "production")
    page.click("#key-create button[type=submit]")
    page.wait_for_selector("#new-secret")
    shown = console.text("#new-secret")
    page.click("#copy-secret")
    page.wait_for_selector("#copy-secret[data-copied=yes]")
    copied = page.evaluate("() => navigator.clipboard.readText()")
    assert copied == shown and shown.startswith("rlo_client_")
    assert evaluate(server, copied) == 200

    row = page.locator("tr", has_text="browser-app")
    key_id = row.get_attribute("data-key")
    assert key_id
    answer_prompts(console, "left on a laptop")
    page.click(f"#revoke-{key_id}")
    page.wait_for_selector(f"#revoke-{key_id}", state="detached")
    assert page.locator("#new-secret").count() == 0  # the secret is gone from the page
    # every process confirms its keys within one REELOUT_FLAG_CHANGE_POLL_SECONDS
    wait_until(lambda: evaluate(server, copied) == 401, message="the revoked key refused")

    page.goto(server.url + "/console/audit")
    page.select_option("#audit-area", "keys")
    page.fill("#audit-target", key_id)
    page.click("#audit-filter")
    page.wait_for_url("**/console/audit?*")
    actions = page.locator("#audit tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.action)"
    )
    assert actions == ["key.revoked", "key.created"]
    revoked = page.locator("#audit tbody tr").first
    assert "left on a laptop" in revoked.inner_text() and "bootstrap" in revoked.inner_text()
    revoked.locator("summary").click()
    assert '"path": "/revoked_at"' in revoked.locator("pre.json").inner_text()
    troubles = ("PAGE ERROR", "Content Security Policy")
    assert not [line for line in console.logs if any(t in line for t in troubles)]


def test_send_a_test_delivery_see_its_attempts_and_resend_it(
    console: Console, server: LiveServer, receiver: Receiver
) -> None:
    page = console.page
    page.goto(server.url + "/console/webhooks")
    page.fill("#webhook-url", receiver.url("/console-hook"))
    page.fill("#webhook-description", "browser test")
    page.click("#webhook-create button[type=submit]")
    page.wait_for_selector("#new-secret")
    endpoint = page.locator("#endpoints tr[data-endpoint]").last.get_attribute("data-endpoint")
    assert endpoint and console.text("#new-secret").startswith("whsec_")

    page.click(f"#test-{endpoint}")
    page.wait_for_selector(f"#test-{endpoint}-done .notice")
    wait_until(lambda: receiver.requests, message="the test delivery")
    first = receiver.requests[0]
    assert first.headers["reelout-event-type"] == "webhook.test"

    def delivered() -> bool:
        page.goto(server.url + f"/console/webhooks?endpoint={endpoint}")
        return page.locator("#deliveries tbody[data-state=delivered]").count() == 1

    wait_until(delivered, timeout=30, message="the delivery log to say delivered")
    body = page.locator("#deliveries tbody[data-state=delivered]")
    delivery = (body.get_attribute("id") or "").removeprefix("delivery-")
    page.click(f"#attempts-{delivery}")
    log = page.locator(f"#attempts-{delivery}-log table")
    log.wait_for()
    assert "200" in log.inner_text() and " ms" in log.inner_text()

    page.click(f"#resend-{delivery}")
    page.wait_for_selector(f"#delivery-{delivery}[data-state=pending]")
    wait_until(lambda: len(receiver.requests) == 2, message="the resent delivery")
    assert receiver.requests[1].event_id == first.event_id  # the same event, sent again


@pytest.fixture(scope="module")
def long_rows(server: LiveServer) -> None:
    """Rows with long words (a URL, a name, ids) in every table: what could push a page wide."""
    with server.client() as api:
        name = "a-key-with-a-rather-long-name-for-" + "a" * 40
        body = {"scope": "client", "environment": "production", "name": name}
        assert api.post("/api/v1/keys", json=body).status_code == 201
        url = "http://127.0.0.1:9/hooks/" + "reelout-" * 20
        hook = api.post("/api/v1/webhooks", json={"url": url, "description": "d" * 80})
        assert hook.status_code == 201, hook.text
        assert api.post(f"/api/v1/webhooks/{hook.json()['id']}/test").status_code == 202


@pytest.mark.usefixtures("long_rows")
@pytest.mark.parametrize("path", ["/keys", "/webhooks", "/audit", "/kpis", "/alerts"])
def test_the_pages_fit_a_phone(browser: Browser, server: LiveServer, path: str) -> None:
    console = open_console(browser, server.url)
    try:
        console.page.set_viewport_size({"width": 390, "height": 844})
        console.page.goto(server.url + "/console" + path)
        width = console.page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= 390, f"{path} is {width} px wide at 390 px"
    finally:
        console.context.close()
