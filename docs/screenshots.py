"""Screenshots of every console page for docs/console.md: `make screenshots` (needs chromium).

Starts `reelout serve` on a scratch data folder, gives it something to show through the public
API (a processed video, keys, a webhook endpoint, a flag split, exposures, telemetry for the
KPI board, a firing alert and a silence, a started rollout of the seed's template with its
arms' telemetry and the controller's first decisions; about a minute of waiting), logs in with Playwright in Debian's Chromium and saves one
screenshot per navigation entry (and the upload page, a video, the flag tabs, a rollout and its
report) into docs/console/, at 1280 px wide.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
from playwright.sync_api import Page, sync_playwright

from reelout.rollouts.plan import seed_template

OUT = Path(__file__).parent / "console"
TOKEN = secrets.token_urlsafe(32)  # a fresh admin token for the scratch server
ORDER = "A-17/inbound"
FLAG_TABS = ("revisions", "promote", "schedules", "stale", "exposures?flag=use_tus_upload")
NAV_QUERY = {"kpis": "?flag=use_tus_upload&window=1h"}  # a navigation page shown with a choice


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def _server(folder: Path) -> Iterator[str]:
    port = _free_port()
    env = {
        **os.environ,
        "REELOUT_DATA_DIR": str(folder / "data"),
        "REELOUT_PORT": str(port),
        "REELOUT_ADMIN_TOKEN": TOKEN,
        "REELOUT_JOB_POLL_SECONDS": "0.2",
        "REELOUT_WEBHOOK_ALLOW_NETWORKS": "127.0.0.0/8",
        "REELOUT_TELEMETRY_ROLLUP_SECONDS": "1",
        "REELOUT_ALERTS_EVAL_SECONDS": "2",
        "REELOUT_ROLLOUT_TICK_SECONDS": "2",
    }
    reelout = Path(sys.executable).with_name("reelout")
    child = subprocess.Popen([str(reelout), "serve"], env=env, stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:

        def ready() -> bool:
            if child.poll() is not None:
                raise SystemExit("reelout serve stopped; see its output above")
            return httpx.get(url + "/readyz", timeout=2).status_code == 200

        _wait(ready, "the server")
        yield url
    finally:
        child.terminate()
        child.wait(20)


def _wait(done: object, what: str, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if done():  # type: ignore[operator]
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"gave up waiting for {what}")


def _clip(folder: Path) -> bytes:
    out = folder / "dock.mp4"
    subprocess.run(
        [
            "ffmpeg",
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=1280x720:rate=30",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440",
            "-t",
            "4",
            "-pix_fmt",
            "yuv420p",
            "-c:v",
            "libx264",
            "-c:a",
            "aac",
            "-shortest",
            str(out),
        ],
        check=True,
    )
    return out.read_bytes()


def _seed(api: httpx.Client, folder: Path) -> tuple[str, int]:
    """Something on every page: a processed video, keys, a webhook, a flag change, exposures,
    an alert, a rollout (its id is the second value)."""
    created = api.post(
        f"/api/v1/orders/{ORDER}/videos",
        content=_clip(folder),
        headers={"Content-Type": "video/mp4", "X-Filename": "dock.mp4"},
    )
    created.raise_for_status()
    uid = str(created.json()["uid"])
    _wait(lambda: api.get(f"/api/v1/videos/{uid}").json()["ready_to_stream"], "processing")
    ios = api.post(
        "/api/v1/keys", json={"name": "ios-app", "scope": "client", "environment": "production"}
    ).json()
    client = api.post(
        "/api/v1/keys", json={"name": "web-app", "scope": "client", "environment": "development"}
    ).json()
    api.post(
        "/api/v1/webhooks", json={"url": "http://127.0.0.1:9/hooks", "events": ["video.ready"]}
    )
    rollout = api.post(
        "/api/v1/environments/development/flags/use_tus_upload/rollout", json={"percent": 10}
    )
    if rollout.is_error:
        print(f"no split to show: {rollout.json()['message']}")
    with httpx.Client(base_url=str(api.base_url), timeout=30) as app:
        app.headers["Authorization"] = f"Bearer {client['key']}"
        for user in range(40):
            app.post(
                "/ofrep/v1/evaluate/flags/use_tus_upload",
                json={"context": {"targetingKey": f"user-{user}"}},
            )
        _telemetry(app)
    _alert(api)
    return uid, _rollout(api, ios["key"])


def _rollout(api: httpx.Client, key: str) -> int:
    """The seed's template for use_tus_upload in production without its warmups (so the first
    minutes count), started; its arms' first uploads (each viewer exposed, then uploading) in
    the first whole minute after the start (the report's KPIs count whole minutes), and the
    controller's decisions on them."""
    plan = seed_template("use_tus_upload", "production", "on", "off").model_dump(mode="json")
    for stage in plan["stages"]:
        stage["warmup"] = "0s"
    made = api.post("/api/v1/rollouts", json=plan)
    made.raise_for_status()
    rid = int(made.json()["id"])
    served = api.post(f"/api/v1/rollouts/{rid}/start").raise_for_status().json()["served_as"]
    time.sleep(61 - time.time() % 60)  # into the next whole minute
    now, events = time.time(), []
    for variant, every in ((served["treatment"], 25), (served["control"], 7)):
        for i in range(60):
            viewer = f"viewer-{variant}-{i}"
            events += [
                _exposure(variant, viewer, now),
                _upload_event(variant, i % every != 0, 80.0, now, viewer),
            ]
    with httpx.Client(base_url=str(api.base_url), timeout=30) as app:
        app.headers["Authorization"] = f"Bearer {key}"
        app.post("/api/v1/telemetry/events", json=events).raise_for_status()
    log = f"/api/v1/rollouts/{rid}/log"
    time.sleep(3)  # the rollups fold the events in
    _wait(lambda: len(api.get(log, params={"kind": "decision"}).json()["entries"]) >= 12,
          "the controller's decisions")  # fmt: skip
    return rid


def _event(type_: str, viewer: str, at: float, **fields: object) -> dict[str, object]:
    return {
        "event_id": str(uuid.uuid4()),
        "type": type_,
        "viewer_id": viewer,
        "client_time": datetime.fromtimestamp(at, UTC).isoformat(),
        **fields,
    }


def _exposure(variant: str, viewer: str, at: float) -> dict[str, object]:
    return _event("exposure", viewer, at, flag="use_tus_upload", variant=variant)


def _upload_event(
    variant: str, ok: bool, seconds: float, at: float, viewer: str | None = None
) -> dict[str, object]:
    fields: dict[str, object] = (
        {"bytes": 50_000_000, "duration_ms": int(seconds * 1000), "method": "tus"}
        if ok
        else {"error_class": "network", "retryable": True}
    )
    return _event(
        "upload_completed" if ok else "upload_failed",
        viewer or f"viewer-{uuid.uuid4().hex[:8]}",
        at,
        upload_id=uuid.uuid4().hex,
        flags={"use_tus_upload": variant},
        **fields,
    )


def _telemetry(app: httpx.Client) -> None:
    """Uploads of both arms of use_tus_upload over the last 50 minutes: tus fails less often
    and is faster (for the KPI board)."""
    now = time.time()
    for step in range(10):
        at = now - (50 - 5 * step) * 60
        events = [_upload_event("on", i % 25 != 0, 70 + step, at) for i in range(40)]
        events += [_upload_event("off", i % 7 != 0, 170 - step, at) for i in range(40)]
        app.post("/api/v1/telemetry/events", json=events).raise_for_status()


def _alert(api: httpx.Client) -> None:
    """A rule that fires at once on the uploads above, fired; a silence beside it."""
    rule = {
        "id": "uploads-failing-now",
        "description": "Upload failures above 3% in development, at once.",
        "signal": {
            "metric": "upload_failure_rate",
            "scope": {"environment": "development", "flag": "use_tus_upload", "variant": "*"},
            "window": "1h",
        },
        "condition": {"op": ">", "threshold": 0.03, "min_denominator": 20},
        "for": "0s",
        "severity": "warning",
    }
    api.post("/api/v1/alerts/rules", json=rule).raise_for_status()
    _wait(
        lambda: api.get("/api/v1/alerts", params={"state": "firing"}).json()["alerts"], "an alert"
    )
    silence = {
        "matchers": [
            {"name": "variant", "value": "off"},
            {"name": "environment", "value": "development"},
        ],
        "duration": "4h",
        "comment": "the old uploader: known to fail on the lab's network",
    }
    api.post("/api/v1/alerts/silences", json=silence).raise_for_status()


def _shoot(page: Page, base: str, path: str, name: str) -> None:
    page.goto(base + path)
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(OUT / f"{name}.png"))
    print(f"docs/console/{name}.png  ({path})")


def main() -> None:
    chromium = shutil.which("chromium")
    if chromium is None:
        raise SystemExit("needs Debian's chromium (apt-get install -y chromium)")
    OUT.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch, _server(Path(scratch)) as base:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        with httpx.Client(base_url=base, headers=headers, timeout=60) as api:
            uid, rollout = _seed(api, Path(scratch))
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium)
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(base + "/console/login")
            page.fill("#key", TOKEN)
            page.click("#login")
            page.wait_for_url(base + "/console")
            links = page.eval_on_selector_all(
                "header nav a", "links => links.map(a => a.getAttribute('href'))"
            )
            for href in links:
                name = href.removeprefix("/console").strip("/") or "upload"
                _shoot(page, base, href + NAV_QUERY.get(name, ""), name)
            _shoot(page, base, f"/console/videos/{uid}", "video")
            for tab in FLAG_TABS:
                _shoot(
                    page, base, f"/console/flags/development/{tab}", "flags-" + tab.split("?")[0]
                )
            _shoot(page, base, "/console/flags/development/use_tus_upload/edit", "flag-edit")
            _shoot(page, base, f"/console/rollouts/{rollout}", "rollout")
            _shoot(page, base, f"/console/rollouts/{rollout}/report", "rollout-report")
            browser.close()


if __name__ == "__main__":
    main()
