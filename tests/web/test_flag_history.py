"""The flags tabs over HTTP: revisions and revert, promote with its diff, scheduled changes, the
stale-flag report and exposures, each action through the service the API calls, audited."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from reelout.clock import ManualClock
from tests.support.live import LiveServer, live_server_fixture
from tests.support.waiting import wait_until
from tests.web.test_login import login, new_key

server = live_server_fixture(scope="module", folder="flag-history")
stale_server = live_server_fixture(name="stale_server", folder="flag-stale", manual_clock=True)

CONSOLE = "/console/flags"
API = "/api/v1/environments"


def switch(default: str = "off", **extra: Any) -> dict[str, Any]:
    return {
        "state": "ENABLED",
        "variants": {"on": True, "off": False},
        "defaultVariant": default,
        **extra,
    }


class Admin:
    """A console session (cookie and CSRF token) and the admin API, on one server."""

    def __init__(self, server: LiveServer) -> None:
        self.server = server
        self.web = httpx.Client(base_url=server.url, timeout=30, follow_redirects=False)
        self.cookie, self.csrf = login(self.web)
        self.web.cookies.clear()  # the session cookie goes by hand, only where a test sends it
        self.api = server.client()

    def page(self, path: str) -> httpx.Response:
        return self.web.get(CONSOLE + path, headers=self.cookie)

    def act(self, path: str, trigger: str, data: dict[str, Any] | None = None) -> httpx.Response:
        """An htmx action as the page sends it: cookie, CSRF header, the triggering element."""
        headers = {**self.cookie, "X-CSRF-Token": self.csrf, "HX-Request": "true"}
        headers["HX-Trigger"] = trigger
        return self.web.post(CONSOLE + path, data=data or {}, headers=headers)

    def put_flag(self, env: str, key: str, flag: dict[str, Any], reason: str = "set up") -> int:
        reply = self.api.put(f"{API}/{env}/flags/{key}", json=flag, params={"reason": reason})
        assert reply.status_code == 200, reply.text
        return int(reply.headers["etag"].strip('"').rsplit("-r", 1)[1])

    def flag_set(self, env: str) -> dict[str, Any]:
        reply = self.api.get(f"{API}/{env}/flagset")
        assert reply.status_code == 200, reply.text
        found: dict[str, Any] = reply.json()
        return found

    def last_audit(self, env: str) -> dict[str, Any]:
        entry: dict[str, Any] = self.api.get("/api/v1/audit", params={"env": env}).json()[
            "entries"
        ][0]
        return entry

    def close(self) -> None:
        self.web.close()
        self.api.close()


@pytest.fixture
def admin(server: LiveServer) -> Iterator[Admin]:
    one = Admin(server)
    yield one
    one.close()


def admin_name(admin: Admin) -> str:
    [key] = [key for key in admin.api.get("/api/v1/keys").json() if key["scope"] == "admin"][:1]
    name: str = key["name"]
    return name


def text(reply: httpx.Response) -> str:
    """The page's text with tags dropped and entities decoded, spaces squeezed."""
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", reply.text)))


def assert_error(reply: httpx.Response, status: int, code: str, trigger: str) -> None:
    """An action's error: its status, shown in words in the trigger's error slot."""
    assert reply.status_code == status, reply.text
    assert reply.headers["hx-retarget"] == f"#{trigger}-error"
    assert f"<strong>{code}</strong>" in reply.text


# ---- every tab ---------------------------------------------------------------------------------

TABS = ["/revisions", "/promote", "/schedules", "/stale", "/exposures"]


@pytest.mark.parametrize("tab", TABS)
def test_each_tab_needs_a_session_and_shows_the_tab_bar(admin: Admin, tab: str) -> None:
    signed_out = admin.web.get(f"{CONSOLE}/development{tab}")
    assert signed_out.status_code == 303
    assert signed_out.headers["location"] == "/console/login"
    page = admin.page(f"/development{tab}")
    assert page.status_code == 200, page.text
    assert f'href="/console/flags/development{tab}" aria-current="page"' in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "style=" not in page.text


@pytest.mark.parametrize("tab", TABS)
def test_an_unknown_environment_is_an_error_page(admin: Admin, tab: str) -> None:
    page = admin.page(f"/moon{tab}")
    assert page.status_code == 404
    assert "UNKNOWN_ENVIRONMENT" in page.text and "development, preview, production" in page.text


# ---- revisions and revert ----------------------------------------------------------------------


def test_revisions_list_who_why_and_which_flags_and_a_revision_its_patch(admin: Admin) -> None:
    first = admin.put_flag("development", "rev_a", switch(), reason="add rev_a")
    second = admin.put_flag("development", "rev_a", switch("on"), reason="rev_a on")
    page = admin.page("/development/revisions")
    assert page.status_code == 200
    row = re.search(rf'<tr data-revision="{second}">(.*?)</tr>', page.text, re.S)
    assert row, page.text
    cells = text(httpx.Response(200, text=row.group(1)))
    assert f"{second} (current)" in cells
    assert admin_name(admin) in cells and "put" in cells and "rev_a" in cells
    assert "rev_a on" in cells

    one = admin.page(f"/development/revisions/{second}")
    assert one.status_code == 200
    assert f"Against revision {first}" in text(one)
    assert "Changed rev_a" in text(one)
    patch = re.search(r'<pre class="json" id="revision-patch"[^>]*>(.*?)</pre>', one.text, re.S)
    assert patch
    assert json.loads(html.unescape(patch.group(1))) == [
        {"op": "replace", "path": "/flags/rev_a/defaultVariant", "value": "on"}
    ]
    assert 'id="revert-form"' not in one.text  # the current revision: nothing to revert to

    older = admin.page(f"/development/revisions/{first}")
    assert 'id="revert-form"' in older.text and "Changed rev_a" in text(older)
    assert admin.page("/development/revisions/99999").status_code == 404


def test_revert_makes_an_old_revision_current_audited_with_the_key_and_reason(
    admin: Admin,
) -> None:
    before = admin.put_flag("development", "rev_b", switch())
    old_set = admin.flag_set("development")
    admin.put_flag("development", "rev_b", switch("on"))

    reply = admin.act(
        f"/development/revisions/{before}/revert", "revert-form", {"reason": "rev_b broke"}
    )
    assert reply.status_code == 200, reply.text
    assert f"revision {before}'s flag set is current again" in text(reply)
    assert admin.flag_set("development") == old_set
    entry = admin.last_audit("development")
    assert entry["action"] == "revert" and entry["source_revision"] == before
    assert entry["actor"] == admin_name(admin) and entry["reason"] == "rev_b broke"


def test_revert_asks_why_checks_csrf_and_shows_errors_in_place(admin: Admin) -> None:
    revision = admin.put_flag("development", "rev_c", switch())
    admin.put_flag("development", "rev_c", switch("on"))
    head = admin.flag_set("development")

    no_reason = admin.act(f"/development/revisions/{revision}/revert", "revert-form")
    assert_error(no_reason, 400, "REASON_REQUIRED", "revert-form")
    missing = admin.act("/development/revisions/99999/revert", "revert-form", {"reason": "x"})
    assert_error(missing, 404, "REVISION_NOT_FOUND", "revert-form")
    forged = admin.web.post(
        f"{CONSOLE}/development/revisions/{revision}/revert",
        data={"reason": "x"},
        headers={**admin.cookie, "X-CSRF-Token": "not-the-token", "HX-Request": "true"},
    )
    assert forged.status_code == 403
    assert admin.flag_set("development") == head


# ---- promote -----------------------------------------------------------------------------------


def preview_of(page: httpx.Response) -> dict[str, str]:
    fields = dict(re.findall(r'name="(source_revision|target_revision)" value="(\d+)"', page.text))
    assert len(fields) == 2, page.text
    return fields


def test_promote_shows_the_difference_to_the_next_environment_then_applies_it(
    admin: Admin,
) -> None:
    admin.put_flag("development", "promo_a", switch("on"))
    page = admin.page("/development/promote")
    assert page.status_code == 200
    picker = re.search(r'<select id="promote-target".*?</select>', page.text, re.S)
    assert picker, page.text
    targets = re.findall(r'<option value="(\w+)"( selected)?>', picker.group(0))
    assert targets == [("preview", " selected"), ("production", "")]  # the next one by default
    patch = re.search(r'<pre class="json" id="promote-patch"[^>]*>(.*?)</pre>', page.text, re.S)
    assert patch and "/flags/promo_a" in html.unescape(patch.group(1))
    assert admin.flag_set("preview").get("flags", {}).get("promo_a") is None  # not yet

    fields = preview_of(page)
    done = admin.act("/development/promote/preview", "promote-form", fields | {"reason": "ok"})
    assert done.status_code == 200, done.text
    assert "Promoted development" in text(done)
    assert admin.flag_set("preview") == admin.flag_set("development")
    entry = admin.last_audit("preview")
    assert entry["action"] == "promote" and entry["source_environment"] == "development"
    assert entry["actor"] == admin_name(admin) and entry["reason"] == "ok"

    again = admin.page("/development/promote?to=preview")
    assert 'id="promote-equal"' in again.text and 'id="promote-form"' not in again.text


def test_promote_applies_only_what_was_shown(admin: Admin) -> None:
    admin.put_flag("development", "promo_b", switch())
    page = admin.page("/development/promote?to=production")
    fields = preview_of(page)
    production = admin.flag_set("production")
    admin.put_flag("development", "promo_b", switch("on"), reason="changed meanwhile")

    stale = admin.act("/development/promote/production", "promote-form", fields | {"reason": "x"})
    assert_error(stale, 412, "STALE_FLAG_SET", "promote-form")
    assert admin.flag_set("production") == production  # rolled back
    no_reason = admin.act("/development/promote/production", "promote-form", fields)
    assert_error(no_reason, 400, "REASON_REQUIRED", "promote-form")


def test_promote_from_the_last_environment_asks_for_a_target(admin: Admin) -> None:
    page = admin.page("/production/promote")
    assert 'id="promote-none"' in page.text and 'id="promotion"' not in page.text
    same = admin.page("/production/promote?to=production")
    assert same.status_code == 400 and "SAME_ENVIRONMENT" in same.text


# ---- scheduled changes -------------------------------------------------------------------------


def schedules_of(admin: Admin, env: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = admin.api.get(f"{API}/{env}/schedules").json()["schedules"]
    return found


def test_schedule_a_change_of_state_variant_and_targeting_then_cancel_it(admin: Admin) -> None:
    rule = {"if": [{"in": [{"var": "targetingKey"}, ["a"]]}, "on", "off"]}
    admin.put_flag("preview", "sched_a", switch(targeting=rule))
    new_rule = {"if": [{"in": [{"var": "targetingKey"}, ["b"]]}, "on", "off"]}
    form = {
        "flag": "sched_a",
        "action": "patch",
        "apply_at": "2099-05-01T09:30",
        "state": "DISABLED",
        "default_variant": "on",
        "targeting": json.dumps(new_rule),
        "reason": "launch",
    }
    reply = admin.act("/preview/schedules", "schedule-form", form)
    assert reply.status_code == 200, reply.text
    assert reply.text.lstrip().startswith('<section class="card wide" id="schedules">')
    [made] = [s for s in schedules_of(admin, "preview") if s["flag"] == "sched_a"]
    assert made["status"] == "pending" and made["apply_at"].startswith("2099-05-01T09:30")
    assert made["patch"] == {"state": "DISABLED", "defaultVariant": "on", "targeting": new_rule}
    assert made["scheduled_by"] == admin_name(admin) and made["reason"] == "launch"
    assert f'data-schedule="{made["id"]}" data-status="pending"' in reply.text

    page = admin.page("/preview/schedules")
    assert f'id="cancel-{made["id"]}"' in page.text
    assert '<option value="sched_a">' in page.text

    assert f'<label class="visually-hidden" for="cancel-reason-{made["id"]}">' in page.text
    cancel, trigger = f"/preview/schedules/{made['id']}/cancel", f"cancel-{made['id']}"
    unexplained = admin.act(cancel, trigger, {"reason": " "})
    assert_error(unexplained, 400, "REASON_REQUIRED", trigger)
    canceled = admin.act(cancel, trigger, {"reason": "launch moved"})
    assert canceled.status_code == 200, canceled.text
    assert f'data-schedule="{made["id"]}" data-status="canceled"' in canceled.text
    assert f"by {admin_name(admin)}: launch moved" in canceled.text
    [after] = [s for s in schedules_of(admin, "preview") if s["id"] == made["id"]]
    assert (after["canceled_by"], after["cancel_reason"]) == (admin_name(admin), "launch moved")
    again = admin.act(cancel, trigger, {"reason": "again"})
    assert_error(again, 409, "SCHEDULE_NOT_PENDING", trigger)


def test_a_kill_can_be_scheduled_and_bad_schedules_are_refused_in_words(admin: Admin) -> None:
    admin.put_flag("preview", "sched_b", switch())
    base = {"flag": "sched_b", "apply_at": "2099-01-01T00:00", "reason": "why"}
    kill = admin.act("/preview/schedules", "schedule-form", base | {"action": "kill"})
    assert kill.status_code == 200, kill.text
    assert any(
        s["flag"] == "sched_b" and s["action"] == "kill" for s in schedules_of(admin, "preview")
    )

    cases = [
        ({"action": "patch"}, 400, "SCHEDULE_PAYLOAD_MISSING"),
        ({"action": "kill", "state": "ENABLED"}, 400, "UNEXPECTED_SCHEDULE_PAYLOAD"),
        ({"action": "patch", "targeting": "{nope"}, 400, "INVALID_JSON"),
        ({"action": "patch", "targeting": '{"in": [1, ' + "[" * 64 + "]" * 64 + "]}"}, 400,
         "JSON_TOO_DEEP"),
        ({"action": "patch", "targeting": '{"var": "a", "var": "b"}'}, 400, "INVALID_JSON"),
        ({"action": "patch", "state": "ENABLED", "apply_at": "2001-01-01T00:00"}, 400,
         "APPLY_AT_IN_PAST"),
        ({"action": "patch", "state": "ENABLED", "apply_at": ""}, 400, "INVALID_SCHEDULE"),
        ({"action": "patch", "default_variant": "nope"}, 400, "INVALID_FLAG_SET"),
        ({"action": "patch", "state": "ENABLED", "reason": ""}, 400, "REASON_REQUIRED"),
        ({"action": "patch", "state": "ENABLED", "flag": "no_such"}, 404, "FLAG_NOT_FOUND"),
    ]  # fmt: skip
    for fields, status, code in cases:
        reply = admin.act("/preview/schedules", "schedule-form", base | fields)
        assert_error(reply, status, code, "schedule-form")


# ---- stale flags -------------------------------------------------------------------------------


def test_the_stale_report_lists_flags_that_serve_one_outcome_for_days(
    stale_server: LiveServer, clock: ManualClock
) -> None:
    setup = Admin(stale_server)
    try:
        setup.put_flag("production", "old_on", switch("on"))
        rule = {"if": [{"in": [{"var": "targetingKey"}, ["a"]]}, "on", "off"]}
        setup.put_flag("production", "old_split", switch(targeting=rule))
    finally:
        setup.close()
    clock.advance(40 * 86400)
    admin = Admin(stale_server)  # logged in after the clock moved
    try:
        admin.put_flag("production", "new_on", switch("on"))
        page = admin.page("/production/stale")
        assert page.status_code == 200
        assert 'value="30"' in page.text  # REELOUT_FLAG_STALE_DAYS
        rows = text(page)
        assert "old_on" in rows and "no_targeting" in rows and "new_on" not in rows
        assert "old_split" not in rows  # two outcomes
        longer = admin.page("/production/stale?days=60")
        assert 'id="no-stale"' in longer.text
    finally:
        admin.close()


# ---- exposures ---------------------------------------------------------------------------------


def test_exposures_per_variant_per_day_as_chart_data_and_a_table(
    admin: Admin, server: LiveServer
) -> None:
    admin.put_flag("production", "expo_a", switch())
    _, client_key = new_key(server, "client")  # a production key
    seen = [("u1", "on"), ("u2", "on"), ("u3", "off")]
    batch = [{"flag": "expo_a", "variant": v, "targetingKey": u} for u, v in seen]
    with server.client(client_key) as app:
        assert app.post("/api/v1/exposures", json={"exposures": batch}).status_code == 202

    def counted() -> bool:
        reply = admin.api.get(f"{API}/production/exposures", params={"flag": "expo_a"})
        return bool(reply.json()["days"])

    wait_until(counted, message="the exposures to be written")
    page = admin.page("/production/exposures?flag=expo_a&days=7")
    assert page.status_code == 200
    assert '<option value="expo_a" selected>' in page.text
    assert "uPlot.iife.min.js" in page.text  # charts: True
    data = re.search(r'data-chart id="exposure-chart".*?<script type="application/json">(.*?)'
                     r"</script>", page.text, re.S)  # fmt: skip
    assert data, page.text
    chart = json.loads(data.group(1))
    assert [s["label"] for s in chart["series"]] == ["off", "on"]
    assert len(chart["x"]) == 7 and chart["ys"][0][-1] == 1 and chart["ys"][1][-1] == 2
    assert sum(chart["ys"][1]) == 2  # the other days: none
    table = re.search(r'<table id="exposure-table">.*?</table>', page.text, re.S)
    assert table
    assert re.search(r"<th scope=\"row\">[\d-]+</th><td>1</td><td>2</td>", table.group(0))

    nothing = admin.page("/production/exposures?flag=never_seen")
    assert 'id="no-exposures"' in nothing.text and 'id="exposure-chart"' not in nothing.text
