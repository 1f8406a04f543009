"""The console's Flags page over HTTP: the table, toggle, kill, rollout, the JSON editor."""

from __future__ import annotations

import html
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from reelout.flags.engine.templates import SEED_FLAGS
from tests.support.live import LiveServer, live_server_fixture
from tests.web.test_login import login

server = live_server_fixture(per_database=True)  # a fresh install: the template is seeded
PROD = "/api/v1/environments/production"
PAGE = "/console/flags"


class Console:
    """A signed-in console client: pages with the cookie, actions with the CSRF header too."""

    def __init__(self, web: httpx.Client) -> None:
        self.web = web
        self.cookie, self.csrf = login(web)

    def get(self, path: str) -> httpx.Response:
        return self.web.get(path, headers=self.cookie)

    def act(self, path: str, trigger: str, **form: Any) -> httpx.Response:
        headers = {**self.cookie, "X-CSRF-Token": self.csrf, "HX-Request": "true"}
        return self.web.post(path, data=form, headers=headers | {"HX-Trigger": trigger})


@pytest.fixture
def console(server: LiveServer) -> Iterator[Console]:
    with httpx.Client(base_url=server.url, timeout=10, follow_redirects=False) as web:
        yield Console(web)


@pytest.fixture
def api(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


def flag(api: httpx.Client, key: str, env: str = "production") -> dict[str, Any]:
    reply = api.get(f"/api/v1/environments/{env}/flags/{key}")
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body


def last_audit(api: httpx.Client) -> dict[str, Any]:
    entry: dict[str, Any] = api.get("/api/v1/audit", params={"limit": 1}).json()["entries"][0]
    return entry


def test_the_flags_page_goes_to_an_environment(console: Console) -> None:
    anonymous = httpx.get(console.web.base_url.join(PAGE), timeout=10)
    assert anonymous.status_code == 303 and anonymous.headers["location"] == "/console/login"
    first = console.get(PAGE)
    assert first.status_code == 303 and first.headers["location"] == f"{PAGE}/development"
    picked = console.get(PAGE + "?env=preview")
    assert picked.headers["location"] == f"{PAGE}/preview"
    unknown = console.get(f"{PAGE}/staging")
    assert unknown.status_code == 404 and "UNKNOWN_ENVIRONMENT" in unknown.text


def test_a_fresh_install_shows_the_template_flags(console: Console) -> None:
    page = console.get(f"{PAGE}/development")
    assert page.status_code == 200, page.text
    text = page.text
    assert 'href="/console/flags" aria-current="page"' in text  # the navigation entry
    assert "Revision 1" in text
    for key in SEED_FLAGS:
        assert f'id="flag-{key}"' in text
    assert "if beta_mode → on, else off" in text  # the use_* prerequisite
    assert "if is_beta → on, else off" in text
    production = console.get(f"{PAGE}/production").text
    assert production.count("no targeting") == len(SEED_FLAGS)
    assert 'aria-label="off 100%"' in production  # everyone on the default: the bar


def test_toggle_switches_a_flag_and_is_audited_with_the_signed_in_key(
    console: Console, api: httpx.Client
) -> None:
    path = f"{PAGE}/production/use_tus_upload/toggle"
    row = console.act(path, "toggle-use_tus_upload", state="DISABLED", reason="not yet")
    assert row.status_code == 200, row.text
    assert row.text.lstrip().startswith('<tr id="flag-use_tus_upload"')
    assert 'data-state="DISABLED"' in row.text and "Turn on" in row.text
    assert flag(api, "use_tus_upload")["state"] == "DISABLED"
    entry = last_audit(api)
    assert (entry["actor"], entry["action"], entry["reason"]) == ("bootstrap", "patch", "not yet")
    back = console.act(path, "toggle-use_tus_upload", state="ENABLED")
    assert 'data-state="ENABLED"' in back.text
    refused = console.act(path, "toggle-use_tus_upload", state="MAYBE")
    assert refused.status_code == 400
    assert refused.headers["hx-retarget"] == "#toggle-use_tus_upload-error"
    assert "INVALID_STATE" in refused.text


def test_kill_asks_for_a_reason_and_goes_through_the_kill_switch(
    console: Console, api: httpx.Client
) -> None:
    path = f"{PAGE}/production/use_media_kit/kill"
    refused = console.act(path, "kill-use_media_kit", reason=" ")
    assert refused.status_code == 400 and "REASON_REQUIRED" in refused.text
    assert refused.headers["hx-retarget"] == "#kill-use_media_kit-error"
    assert flag(api, "use_media_kit")["state"] == "ENABLED"
    row = console.act(path, "kill-use_media_kit", reason="crashes on Android 9")
    assert row.status_code == 200, row.text
    assert 'data-state="DISABLED"' in row.text
    assert 'id="kill-use_media_kit"' not in row.text, "a killed flag has no kill switch"
    entry = last_audit(api)
    assert (entry["action"], entry["flag"], entry["reason"]) == (
        "kill",
        "use_media_kit",
        "crashes on Android 9",
    )


def test_the_rollout_control_sets_a_split_drawn_as_a_bar(
    console: Console, api: httpx.Client
) -> None:
    path = f"{PAGE}/production/use_tus_upload/rollout"
    row = console.act(path, "rollout-use_tus_upload", percent="10", variant="on", reason="p3")
    assert row.status_code == 200, row.text
    assert "fractional 10/90 (on/off) by targetingKey" in row.text
    assert '<rect class="seg seg-0" x="0.000" y="0" width="10.000"' in row.text
    assert 'id="percent-use_tus_upload"' in row.text and 'value="10"' in row.text
    assert flag(api, "use_tus_upload")["targeting"] == {"fractional": [["on", 10], ["off", 90]]}
    entry = last_audit(api)
    assert (entry["action"], entry["actor"], entry["reason"]) == ("rollout", "bootstrap", "p3")
    console.act(path, "rollout-use_tus_upload", percent="30", variant="on")
    assert flag(api, "use_tus_upload")["targeting"] == {"fractional": [["on", 30], ["off", 70]]}
    too_much = console.act(path, "rollout-use_tus_upload", percent="130")
    assert too_much.status_code == 422
    assert flag(api, "use_tus_upload")["targeting"]["fractional"][0] == ["on", 30]


def test_the_templates_beta_rule_takes_a_percentage_for_everyone_else(
    console: Console, api: httpx.Client
) -> None:
    page = console.get(f"{PAGE}/development").text
    assert 'id="percent-use_tus_upload"' in page
    path = f"{PAGE}/development/use_tus_upload/rollout"
    row = console.act(path, "rollout-use_tus_upload", percent="10", reason="phase 3")
    assert row.status_code == 200, row.text
    rule = flag(api, "use_tus_upload", "development")["targeting"]["if"]
    assert rule[1:] == ["on", {"fractional": [["on", 10], ["off", 90]]}]


def test_a_rule_a_percentage_cannot_set_has_none_and_refuses_one_in_words(
    console: Console, api: httpx.Client
) -> None:
    three = {
        "state": "ENABLED",
        "variants": {"a": 1, "b": 2, "c": 3},
        "defaultVariant": "a",
        "targeting": {"fractional": [["a", 1], ["b", 1], ["c", 1]]},
    }
    made = api.put("/api/v1/environments/development/flags/three_way", json=three)
    assert made.status_code == 200, made.text
    page = console.get(f"{PAGE}/development").text
    assert 'id="percent-three_way"' not in page
    path = f"{PAGE}/development/three_way/rollout"
    refused = console.act(path, "rollout-three_way", percent="10")
    assert refused.status_code == 409
    assert "NOT_A_TWO_WAY_SPLIT" in refused.text and "edit the flag" in refused.text


def test_actions_need_the_csrf_header(console: Console, api: httpx.Client) -> None:
    path = f"{PAGE}/production/beta_mode/toggle"
    forged = console.web.post(path, data={"state": "DISABLED"}, headers=console.cookie)
    assert forged.status_code == 403
    assert flag(api, "beta_mode")["state"] == "ENABLED"


def test_the_editor_saves_a_flag_and_shows_faults_at_their_pointer(
    console: Console, api: httpx.Client
) -> None:
    page = console.get(f"{PAGE}/production/beta_mode/edit")
    assert page.status_code == 200
    assert '"defaultVariant": "off"' in html.unescape(page.text)
    assert 'value="&#34;production-r1&#34;"' in page.text  # the ETag it was read at
    path = f"{PAGE}/production/beta_mode/edit"
    broken = {**flag(api, "beta_mode"), "defaultVariant": "maybe"}
    faulty = console.act(path, "flag-editor", definition=json.dumps(broken), etag='"production-r1"')
    assert faulty.status_code == 400
    assert '<code class="pointer">/defaultVariant</code>' in faulty.text
    assert 'aria-invalid="true"' in faulty.text and "maybe" in faulty.text  # the text is kept
    assert flag(api, "beta_mode")["defaultVariant"] == "off"

    fixed = {**broken, "defaultVariant": "on"}
    saved = console.act(
        path, "flag-editor", definition=json.dumps(fixed), etag='"production-r1"', reason="go"
    )
    assert saved.status_code == 200, saved.text
    assert "production is now at revision 2" in saved.text
    assert flag(api, "beta_mode")["defaultVariant"] == "on"
    assert (last_audit(api)["actor"], last_audit(api)["reason"]) == ("bootstrap", "go")

    stale = console.act(path, "flag-editor", definition=json.dumps(fixed), etag='"production-r1"')
    assert stale.status_code == 412 and "STALE_FLAG_SET" in stale.text
    assert stale.headers["hx-retarget"] == "#flag-editor-error"
    not_json = console.act(path, "flag-editor", definition="{", etag='"production-r2"')
    assert not_json.status_code == 400 and "INVALID_JSON" in not_json.text
    # a form field passes the body limit's depth check, so the editor checks the JSON itself
    deep = '{"variants": {"a": ' + "[" * 64 + "]" * 64 + "}}"
    too_deep = console.act(path, "flag-editor", definition=deep, etag='"production-r2"')
    assert too_deep.status_code == 400 and "JSON_TOO_DEEP" in too_deep.text
    assert flag(api, "beta_mode")["defaultVariant"] == "on", "nothing changed"


def test_editing_a_missing_flag_says_so(console: Console) -> None:
    reply = console.get(f"{PAGE}/production/nope/edit")
    assert reply.status_code == 404 and "FLAG_NOT_FOUND" in reply.text
