"""Screenshots of every console page for docs/console.md: `make screenshots` (needs chromium).

Starts `reelout serve` on a scratch data folder, gives it something to show through the public
API (a processed video, keys, a webhook endpoint, a flag split, exposures, telemetry for the
KPI board, a firing alert and a silence, a started rollout), logs in with
Playwright in Debian's Chromium and saves one screenshot per navigation entry (and the upload
page) into docs/console/, at 1280 px wide.
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


def _seed(api: httpx.Client, folder: Path) -> str:
    """Something on every page: a processed video, keys, a webhook, a flag change, exposures."""
    created = api.post(
        f"/api/v1/orders/{ORDER}/videos",
        content=_clip(folder),
        headers={"Content-Type": "video/mp4", "X-Filename": "dock.mp4"},
    )
    created.raise_for_status()
    uid = str(created.json()["uid"])
    _wait(lambda: api.get(f"/api/v1/videos/{uid}").json()["ready_to_stream"], "processing")
    api.post(
        "/api/v1/keys", json={"name": "ios-app", "scope": "client", "environment": "production"}
    )
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
    _rollout(api)
    return uid


def _rollout(api: httpx.Client) -> None:
    """The seed's rollout of use_tus_upload in production, started (for the Rollouts pages)."""
    template = {"flag": "use_tus_upload", "environment": "production", "treatment": "on",
                "control": "off"}  # fmt: skip
    made = api.post("/api/v1/rollouts/from-template", json=template)
    made.raise_for_status()
    api.post(f"/api/v1/rollouts/{made.json()['id']}/start").raise_for_status()


def _upload_event(variant: str, ok: bool, seconds: float, at: float) -> dict[str, object]:
    fields: dict[str, object] = (
        {"type": "upload_completed", "bytes": 50_000_000, "duration_ms": int(seconds * 1000),
         "method": "tus"}
        if ok
        else {"type": "upload_failed", "error_class": "network", "retryable": True}
    )  # fmt: skip
    return {
        "event_id": str(uuid.uuid4()),
        "viewer_id": f"viewer-{uuid.uuid4().hex[:8]}",
        "upload_id": uuid.uuid4().hex,
        "client_time": datetime.fromtimestamp(at, UTC).isoformat(),
        "flags": {"use_tus_upload": variant},
        **fields,
    }


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
            uid = _seed(api, Path(scratch))
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
            _shoot(page, base, "/console/rollouts/1", "rollout")
            browser.close()


if __name__ == "__main__":
    main()
