"""The KPIs' default arms over real HTTP (API, console, CLI): a flag in a rollout compares the
rollout's own arms, named as people know them; without a rollout in the window, the variant
named like a control against another, never the rollout's excluded rest."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from reelout.clock import ManualClock
from tests.rollouts.conftest import API, ENV, FLAG, PLAN, check, on_manual_clock
from tests.support.cli import Cli, as_json, cli_for, ok
from tests.support.jobs import run_jobs, telemetry_only
from tests.support.live import LiveServer, StartLive
from tests.telemetry.conftest import client_key
from tests.telemetry.conftest import upload_outcome as upload
from tests.web.test_login import login

# per variant: (uploads, of which succeeded)
UPLOADS = {"on~r{rid}": (100, 97), "off~r{rid}": (100, 85), "off~excluded": (100, 50)}


@pytest.fixture
def server(live_servers: StartLive, clock: ManualClock) -> LiveServer:
    return on_manual_clock(live_servers, clock)


def send_uploads(live: LiveServer, clock: ManualClock, counts: dict[str, tuple[int, int]]) -> None:
    """Uploads per variant, rolled up."""
    events = [
        upload(clock, variant, ok=i < good, seconds=60, flag=FLAG)
        for variant, (total, good) in counts.items()
        for i in range(total)
    ]
    with live.client(token=client_key(live, ENV)) as app:
        assert check(app.post("/api/v1/telemetry/events", json=events))["accepted"] == len(events)
    clock.advance(60)
    run_jobs(live.runtime, registry=telemetry_only(), tick=True)


def started(live: LiveServer) -> int:
    with live.client() as admin:
        rid = int(check(admin.post(API, json=PLAN), 201)["id"])
        check(admin.post(f"{API}/{rid}/start"))
    return rid


def kpis(live: LiveServer, **params: str) -> dict[str, Any]:
    with live.client() as admin:
        body: dict[str, Any] = check(
            admin.get("/api/v1/kpis", params={"environment": ENV, "flag": FLAG, "window": "1h",
                                              **params})
        )  # fmt: skip
    return body


def success(body: dict[str, Any]) -> dict[str, Any]:
    rows: list[dict[str, Any]] = body["kpis"]
    [row] = [row for row in rows if row["metric"] == "upload_success_rate"]
    return row


def test_a_flag_in_a_rollout_compares_the_rollouts_arms(
    server: LiveServer, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    rid = started(server)
    clock.advance(60)
    send_uploads(server, clock, {k.format(rid=rid): v for k, v in UPLOADS.items()})

    body = kpis(server)
    assert body["rollout"] == {
        "id": rid, "state": "running", "treatment": "on", "control": "off",
        "served_as": {"treatment": f"on~r{rid}", "control": f"off~r{rid}"},
    }  # fmt: skip
    row = success(body)
    assert (row["control"]["variant"], row["treatment"]["variant"]) == (f"off~r{rid}", f"on~r{rid}")
    assert row["control"]["value"] == pytest.approx(0.85)
    assert row["treatment"]["value"] == pytest.approx(0.97)

    asked = kpis(server, control="off~excluded", treatment=f"on~r{rid}")  # as asked: no rollout
    assert asked["rollout"] is None
    assert success(asked)["control"]["value"] == pytest.approx(0.5)

    with httpx.Client(base_url=server.url, timeout=10, follow_redirects=False) as web:
        cookie, _ = login(web)
        page = web.get(
            "/console/kpis", params={"environment": ENV, "flag": FLAG, "window": "1h"},
            headers=cookie,
        )  # fmt: skip
    assert page.status_code == 200, page.text
    assert f'<a href="/console/rollouts/{rid}">rollout {rid}</a> (running)' in page.text
    assert f'<code>on</code> <span class="muted">(served as <code>on~r{rid}</code>)' in page.text
    assert f'<span class="arm-variant">on (served as on~r{rid})</span>' in page.text
    assert f'<span class="arm-variant">off (served as off~r{rid})</span>' in page.text
    assert "off~excluded" not in page.text  # neither in the table nor in a chart
    assert '{"label": "on (served as on~r' in page.text  # the charts name the arms the same

    cli: Cli = cli_for(server, monkeypatch)
    until = clock.now().isoformat()
    given = as_json(cli("kpi", "--env", ENV, "--flag", FLAG, "--window", "1h", "--until", until,
                        "--json"))  # fmt: skip
    assert given["rollout"] == body["rollout"] and given["kpis"] == body["kpis"]
    shown = ok(cli("kpi", "--env", ENV, "--flag", FLAG, "--window", "1h", "--until", until))
    assert f"the arms of rollout {rid} (running)" in " ".join(shown.stdout.split())


def test_without_a_rollout_in_the_window_the_excluded_rest_is_never_an_arm(
    server: LiveServer, clock: ManualClock
) -> None:
    rid = started(server)
    with server.client() as admin:
        check(admin.post(f"{API}/{rid}/abort", json={"reason": "not today"}))
    clock.advance(60)
    plain = {"off": (100, 85), "off~excluded": (100, 50), "on": (100, 97)}
    send_uploads(server, clock, plain)
    ended = kpis(server)  # the aborted rollout ran in the window: its arms, with no units
    assert ended["rollout"]["id"] == rid and ended["rollout"]["state"] == "aborted"
    assert success(ended)["treatment"] == {
        "variant": f"on~r{rid}", "n": 0, "value": None, "lower": None, "upper": None,
        "p50": None, "p90": None,
    }  # fmt: skip

    clock.advance(2 * 3600)  # the rollout ended before the window
    send_uploads(server, clock, plain)
    body = kpis(server)
    assert body["rollout"] is None
    row = success(body)
    assert (row["control"]["variant"], row["treatment"]["variant"]) == ("off", "on")
    assert row["treatment"]["value"] == pytest.approx(0.97)
