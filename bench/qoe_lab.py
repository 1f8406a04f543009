"""Playback QoE lab: a 60 s clip from a running `reelout serve` played in Debian's Chromium under
throttled network profiles (DevTools network emulation), the HLS ladder with hls.js next to the
top rendition's MP4 played progressively; the figures come from the browser SDK's events through
the ingest, the rollups and the KPI service, with the page's own measurements next to them."""

from __future__ import annotations

import argparse
import contextlib
import http.server
import json
import math
import os
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import Server, free_port, machine, send_request, start_reelout, work_dir
from ofrep_bulk import _expect, call, client_key
from transcode import make_source

ENVIRONMENT = "production"
APP_VERSION = "qoe-lab-1"
ARMS = ("ladder", "mp4")  # treatment: the HLS ladder with hls.js; control: the progressive MP4
CLIP_SECONDS = 60
QUICK_SECONDS = 20  # --quick: each view ends (user_exit) after this much of the clip
GOAL_STARTUP_S = 2.0  # the seed's playback start time target (on the 9 Mbit/s profile)
GOAL_REBUFFER = 0.08  # the seed's buffering target, read as rebuffer percentage (issue 12)
METRICS = (
    "video_startup_seconds",
    "rebuffer_percentage",
    "views_with_buffering",
    "exits_before_video_start",
    "video_startup_failure",
)
# the console's player (web/static/player.js HLS_CONFIG)
CONSOLE_HLS_CONFIG = {"startLevel": 0, "enableWorker": False}
BROWSER_ARGS = ["--autoplay-policy=no-user-gesture-required", "--mute-audio"]


@dataclass(frozen=True)
class Profile:
    """A network profile for Network.emulateNetworkConditions."""

    name: str
    down_kbps: int
    up_kbps: int
    rtt_ms: int

    @property
    def flag(self) -> str:
        """The flag whose variant (ladder | mp4) separates this profile's two arms."""
        return "qoe_lab_" + self.name.replace(".", "_").lower()

    def conditions(self) -> dict[str, Any]:
        # CDP throughput is in bytes/s; latency is added to every request (request → headers)
        return {
            "offline": False,
            "latency": self.rtt_ms,
            "downloadThroughput": self.down_kbps * 1000 / 8,
            "uploadThroughput": self.up_kbps * 1000 / 8,
        }


# Lighthouse's "Slow 4G" (1.6 Mbit/s down, 750 kbit/s up, 150 ms), a fast 4G link (9 Mbit/s
# down, 1.5 Mbit/s up, 85 ms), and a 30 Mbit/s / 15 Mbit/s link at 20 ms. Issue 12 sets the
# down rates and latencies; the up rates are the bench's choice.
PROFILES = (
    Profile("1.6M", 1_600, 750, 150),
    Profile("9M", 9_000, 1_500, 85),
    Profile("30M", 30_000, 15_000, 20),
)

# -- the page: hls.js or a plain <video>, reported by the browser SDK ------------------------------

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Reelout QoE lab</title>
<script src="{reelout}/console/static/vendor/hls.min.js"></script>
</head><body>
<video id="video" muted playsinline width="960" height="540"></video>
<script type="module">
import {{ createTelemetry }} from "{reelout}/sdk/telemetry.js";
const cfg = JSON.parse(decodeURIComponent(location.hash.slice(1)));
const video = document.getElementById("video");
const problems = [];
const tel = createTelemetry({{
  endpoint: "{reelout}", clientKey: cfg.key, viewerId: cfg.viewer, appVersion: cfg.appVersion,
  flags: {{ [cfg.flag]: cfg.arm }}, onError: (e) => problems.push(e.message),
}});
// the page's own clock, independent of the SDK: attach -> first playing; stalls after it
const m = {{ startupMs: null, stalls: 0, stallMs: 0, watchMs: 0, ended: false, cut: false,
  heights: [], errors: [] }};
const t = () => performance.now();
let t0 = 0, playingSince = null, stallSince = null, finished = false, hls = null, view = null;
const stopWatch = (now) => {{ if (playingSince !== null) {{ m.watchMs += now - playingSince; playingSince = null; }} }};
const endStall = (now) => {{ if (stallSince !== null) {{ m.stallMs += now - stallSince; stallSince = null; }} }};
video.addEventListener("playing", () => {{
  const now = t();
  if (m.startupMs === null) m.startupMs = now - t0;
  endStall(now);
  playingSince = now;
}});
video.addEventListener("waiting", () => {{
  if (m.startupMs === null || video.seeking) return;
  const now = t();
  stopWatch(now);
  if (stallSince === null) {{ stallSince = now; m.stalls += 1; }}
}});
video.addEventListener("pause", () => {{ const now = t(); stopWatch(now); endStall(now); }});
video.addEventListener("ended", () => {{ m.ended = true; finish(false); }});
video.addEventListener("error", () => m.errors.push(video.error ? video.error.code : "?"));
video.addEventListener("timeupdate", () => {{
  if (cfg.playSeconds && video.currentTime >= cfg.playSeconds) finish(false);
}});
async function finish(cut) {{
  if (finished) return;
  finished = true;
  const now = t();
  stopWatch(now);
  endStall(now);
  m.cut = cut;
  m.playhead = video.currentTime;
  if (!m.ended) {{ video.pause(); view.end("user_exit"); }}  // `ended`: the SDK sent view_end completed
  m.sdk = view.counters();
  const q = video.getVideoPlaybackQuality();
  m.frames = {{ total: q.totalVideoFrames, dropped: q.droppedVideoFrames }};
  for (let i = 0; i < 50 && tel.stats().queued > 0; i++) {{
    await tel.flush();
    if (tel.stats().queued > 0) await new Promise((r) => setTimeout(r, 200));
  }}
  m.telemetry = tel.stats();
  m.problems = problems;
  document.body.dataset.result = JSON.stringify(m);
}}
setTimeout(() => finish(true), cfg.capMs);
t0 = t();
if (cfg.arm === "ladder") {{
  hls = new Hls(cfg.hlsConfig || {{}});
  view = tel.attachHls(hls, video, {{ videoId: cfg.videoId, autoplay: true }});
  hls.on(Hls.Events.MANIFEST_PARSED, () => video.play().catch(() => {{}}));
  hls.on(Hls.Events.LEVEL_SWITCHED, (_, d) => m.heights.push(hls.levels[d.level].height));
  hls.on(Hls.Events.ERROR, (_, d) => {{ if (d.fatal) m.errors.push(d.details); }});
  hls.loadSource(cfg.src);
  hls.attachMedia(video);
}} else {{
  view = tel.attachVideo(video, {{ videoId: cfg.videoId, autoplay: true }});
  video.src = cfg.src;
  video.play().catch(() => {{}});
}}
</script>
</body></html>"""


@contextlib.contextmanager
def page_server(html: str) -> Iterator[str]:
    """The lab page on an origin of its own (an app's page), as the SDK's users have it."""
    body = html.encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/lab.html"
    finally:
        httpd.shutdown()
        httpd.server_close()


# -- the server side: upload, processing, client key, KPIs -----------------------------------------


def upload(server: Server, clip: Path) -> str:
    """A direct binary upload of the clip into an order stage; the new video's uid."""
    size = clip.stat().st_size
    headers = {**server.headers, "Content-Type": "video/mp4", "Content-Length": str(size)}
    headers["X-Filename"] = clip.name
    conn = server.connect(timeout=600)

    def chunks() -> Iterator[bytes]:
        with clip.open("rb") as f:
            while block := f.read(1 << 20):
                yield block

    resp = send_request(conn, "POST", "/api/v1/orders/qoe-lab/outbound/videos", headers, chunks())
    body = resp.read()
    conn.close()
    _expect("direct upload", resp.status, (201,), body)
    uid: str = json.loads(body)["uid"]
    return uid


def wait_ready(
    server: Server, uid: str, timeout: float, say: Callable[[str], None]
) -> dict[str, Any]:
    """Poll the video until processing made it ready (the HLS ladder and the MP4 exist)."""
    deadline, last = time.monotonic() + timeout, -1.0
    while time.monotonic() < deadline:
        status, _, body = call(server, "GET", f"/api/v1/videos/{uid}")
        _expect("GET video", status, (200,), body)
        video: dict[str, Any] = json.loads(body)
        state = video["status"]["state"]
        if state == "ready":
            return video
        if state == "error":
            raise RuntimeError(f"processing failed: {video['status']}")
        pct = video["status"].get("pct_complete") or 0.0
        if pct >= last + 20:
            say(f"processing: {state} {pct:.0f} %")
            last = pct
        time.sleep(1)
    raise RuntimeError(f"the video was not ready within {timeout:.0f} s")


def kpis(server: Server, profile: Profile) -> dict[str, Any]:
    """GET /api/v1/kpis for the profile's flag: mp4 as control, ladder as treatment."""
    query = [("environment", ENVIRONMENT), ("flag", profile.flag), ("window", "24h")]
    query += [("control", "mp4"), ("treatment", "ladder")]
    query += [("metric", name) for name in METRICS]
    status, _, body = call(server, "GET", "/api/v1/kpis?" + urlencode(query))
    _expect("GET /api/v1/kpis", status, (200,), body)
    answer: dict[str, Any] = json.loads(body)
    return answer


def rolled_up(
    server: Server, profiles: list[Profile], views: int, timeout: float
) -> dict[str, Any]:
    """Wait until the server's own rollup job folded every view in (the startup metric counts
    `views` views per arm and profile, or the watermark passed the last event); the KPIs."""
    deadline, since = time.monotonic() + timeout, datetime.now(UTC)
    found: dict[str, Any] = {}
    while time.monotonic() < deadline:
        found = {p.name: kpis(server, p) for p in profiles}
        mark = next(iter(found.values()))["watermark"]
        caught_up = mark is not None and datetime.fromisoformat(mark) > since
        if caught_up and all(_views(a) >= views for a in found.values()):
            break
        time.sleep(2)
    return found


def _views(answer: dict[str, Any]) -> int:
    """The fewest views behind the exits metric (its denominator is every view) in either arm."""
    row = next(r for r in answer["kpis"] if r["metric"] == "exits_before_video_start")
    arms = [row["control"], row["treatment"]]
    return min(int((arm or {}).get("n", 0)) for arm in arms)


# -- the plays -------------------------------------------------------------------------------------


@dataclass
class Play:
    """One view as the page measured it."""

    profile: str
    arm: str
    round_no: int
    startup_s: float | None
    stalls: int
    stall_s: float
    watch_s: float
    ended: bool
    cut: bool
    playhead_s: float
    wall_s: float
    load_1m: float
    heights: list[int] = field(default_factory=list)
    errors: list[Any] = field(default_factory=list)
    telemetry: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    sdk_counters: dict[str, Any] = field(default_factory=dict)
    frames: dict[str, int] = field(default_factory=dict)

    @property
    def rebuffer(self) -> float:
        total = self.watch_s + self.stall_s
        return self.stall_s / total if total else 0.0


@dataclass
class Lab:
    """What the page needs to play: where, what, with which key."""

    page_url: str
    key: str
    video: dict[str, Any]
    play_seconds: float | None
    cap_s: float
    hls_config: dict[str, Any]


def play_once(browser: Any, lab: Lab, profile: Profile, arm: str, rnd: int) -> Play:
    """A fresh browser context (empty cache), throttled by CDP, playing one view to its end."""
    context = browser.new_context(viewport={"width": 1000, "height": 600})
    try:
        page = context.new_page()
        logs: list[str] = []
        page.on("pageerror", lambda error: logs.append(f"PAGE ERROR: {error}"))
        cdp = context.new_cdp_session(page)
        cdp.send("Network.enable")
        cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
        cdp.send("Network.emulateNetworkConditions", profile.conditions())
        playback = lab.video["playback"]
        cfg = {
            "key": lab.key,
            "viewer": f"lab-{profile.flag}-{arm}-{rnd}",
            "appVersion": APP_VERSION,
            "flag": profile.flag,
            "arm": arm,
            "videoId": lab.video["uid"],
            "src": playback["hls"] if arm == "ladder" else playback["mp4"],
            "playSeconds": lab.play_seconds,
            "capMs": int(lab.cap_s * 1000),
            "hlsConfig": lab.hls_config,
        }
        page.goto(lab.page_url + "#" + quote(json.dumps(cfg)))
        start = time.monotonic()
        page.wait_for_function(
            "() => document.body.dataset.result", timeout=(lab.cap_s + 90) * 1000
        )
        wall = time.monotonic() - start
        m = json.loads(page.get_attribute("body", "data-result") or "{}")
    finally:
        context.close()
    startup = m["startupMs"]
    return Play(
        profile.name,
        arm,
        rnd,
        None if startup is None else startup / 1000,
        m["stalls"],
        m["stallMs"] / 1000,
        m["watchMs"] / 1000,
        m["ended"],
        m["cut"],
        m.get("playhead", 0.0),
        wall,
        os.getloadavg()[0],
        sorted(set(m["heights"])),
        m["errors"] + logs,
        m.get("telemetry", {}),
        m.get("problems", []),
        m.get("sdk", {}),
        m.get("frames", {}),
    )


@dataclass
class Plan:
    plays: int
    quick: bool
    profiles: list[Profile]
    cap_s: float
    ready_timeout_s: float
    hls_config: dict[str, Any]


def run(plan: Plan, say: Callable[[str], None]) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    if chromium is None:
        raise SystemExit("this bench needs Debian's chromium on PATH (apt-get install chromium)")
    clip = make_source(shutil.which("ffmpeg") or "ffmpeg", CLIP_SECONDS, say)
    loads: list[float] = [os.getloadavg()[0]]
    with work_dir("qoe-lab-") as tmp:
        server = start_reelout(tmp / "data", REELOUT_EMBEDDED_WORKER="true")
        try:
            say(f"uploading {clip.name} ({clip.stat().st_size / 2**20:.0f} MiB) ...")
            t0 = time.monotonic()
            uid = upload(server, clip)
            video = wait_ready(server, uid, plan.ready_timeout_s, say)
            ready_s = time.monotonic() - t0
            rungs = [f"{r['height']}p {r['bandwidth'] / 1e6:.2f}" for r in video["renditions"]]
            say(f"ready after {ready_s:.0f} s; rungs (Mbit/s, peak): {', '.join(rungs)}")
            key = client_key(server, ENVIRONMENT, "qoe-lab")
            play_seconds = QUICK_SECONDS if plan.quick else None
            plays: list[Play] = []
            with (
                page_server(PAGE.format(reelout=f"http://127.0.0.1:{server.port}")) as url,
                sync_playwright() as pw,
            ):
                browser = pw.chromium.launch(executable_path=chromium, args=BROWSER_ARGS)
                lab = Lab(url, key, video, play_seconds, plan.cap_s, plan.hls_config)
                for rnd in range(plan.plays):
                    for profile in plan.profiles:
                        for arm in ARMS[:: 1 if rnd % 2 == 0 else -1]:
                            one = play_once(browser, lab, profile, arm, rnd)
                            plays.append(one)
                            loads.append(one.load_1m)
                            say(_line(one))
                browser.close()
            say("waiting for the rollup job to fold the views in ...")
            answers = rolled_up(server, plan.profiles, plan.plays, 120)
        finally:
            server.stop()
    return {
        "clip": clip.name,
        "ready_s": round(ready_s, 1),
        "renditions": video["renditions"],
        "plays": plays,
        "kpis": answers,
        "load": {"min": min(loads), "max": max(loads)},
    }


def _line(p: Play) -> str:
    startup = "none" if p.startup_s is None else f"{p.startup_s:.2f} s"
    end = "ended" if p.ended else ("cut at the cap" if p.cut else "stopped")
    return (
        f"{p.profile:>4} {p.arm:<6} #{p.round_no + 1}: startup {startup}, {p.stalls} stalls "
        f"{p.stall_s:.1f} s / watch {p.watch_s:.1f} s ({p.rebuffer:.1%}), {end} at "
        f"{p.playhead_s:.1f} s, wall {p.wall_s:.0f} s, heights {p.heights}, "
        f"{p.frames.get('dropped', '?')}/{p.frames.get('total', '?')} frames dropped, "
        f"{p.telemetry.get('accepted', '?')} events accepted, load {p.load_1m:.2f}"
        + (f", errors {p.errors}" if p.errors else "")
        + (f", telemetry problems {p.problems}" if p.problems else "")
    )


# -- figures ---------------------------------------------------------------------------------------


def nearest_rank(values: list[float], q: float) -> float | None:
    """The smallest value with at least q of the values at or below it."""
    ordered = sorted(values)
    if not ordered:
        return None
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def arm_of(answer: dict[str, Any], metric: str, arm: str) -> dict[str, Any]:
    row = next(r for r in answer["kpis"] if r["metric"] == metric)
    found: dict[str, Any] = row["treatment" if arm == "ladder" else "control"] or {}
    return found


def cohort(result: dict[str, Any], profile: str, arm: str) -> dict[str, Any]:
    """One cell of the table: the KPI service's figures and the page's."""
    answer = result["kpis"][profile]
    startup = arm_of(answer, "video_startup_seconds", arm)
    mine = [p for p in result["plays"] if p.profile == profile and p.arm == arm]
    starts = [p.startup_s for p in mine if p.startup_s is not None]
    stall = sum(p.stall_s for p in mine)
    watch = sum(p.watch_s for p in mine)
    return {
        "profile": profile,
        "arm": arm,
        "kpi": {
            "views": startup.get("n", 0),
            "startup_mean_s": startup.get("value"),
            "startup_p50_s": startup.get("p50"),
            "startup_p90_s": startup.get("p90"),
            "rebuffer": arm_of(answer, "rebuffer_percentage", arm).get("value"),
            "views_with_buffering": arm_of(answer, "views_with_buffering", arm).get("value"),
            "exits_before_start": arm_of(answer, "exits_before_video_start", arm).get("value"),
            "startup_failure": arm_of(answer, "video_startup_failure", arm).get("value"),
        },
        "page": {
            "views": len(mine),
            "startup_p50_s": nearest_rank(starts, 0.5),
            "startup_p90_s": nearest_rank(starts, 0.9),
            "rebuffer": stall / (watch + stall) if watch + stall else None,
            "views_with_buffering": sum(p.stalls > 0 for p in mine) / len(mine) if mine else None,
            "cut_at_cap": sum(p.cut for p in mine),
        },
    }


def goals(cells: list[dict[str, Any]]) -> list[tuple[str, str, bool | None]]:
    """The issue's goals on the KPI service's figures."""
    by = {(c["profile"], c["arm"]): c["kpi"] for c in cells}
    out: list[tuple[str, str, bool | None]] = []
    nine = by.get(("9M", "ladder"))
    if nine:
        mean = nine["startup_mean_s"]
        out.append(
            (
                "9M ladder: startup ≤ 2 s (the KPI's mean)",
                _fmt_s(mean) + f" (p50 {_fmt_s(nine['startup_p50_s'])})",
                None if mean is None else mean <= GOAL_STARTUP_S,
            )
        )
        reb = nine["rebuffer"]
        out.append(
            ("9M ladder: rebuffer ≤ 8 %", _pct(reb), None if reb is None else reb <= GOAL_REBUFFER)
        )
    for profile in dict.fromkeys(c["profile"] for c in cells):
        hls, mp4 = by.get((profile, "ladder")), by.get((profile, "mp4"))
        if not hls or not mp4:
            continue
        figures = (hls["startup_mean_s"], mp4["startup_mean_s"], hls["rebuffer"], mp4["rebuffer"])
        ok = None
        if None not in figures:
            ok = figures[0] <= figures[1] and figures[2] <= figures[3]
        out.append(
            (
                f"{profile}: ladder ahead of the MP4 (startup and rebuffer both ≤)",
                f"startup {_fmt_s(figures[0])} vs {_fmt_s(figures[1])}, "
                f"rebuffer {_pct(figures[2])} vs {_pct(figures[3])}",
                ok,
            )
        )
    return out


def _fmt_s(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def table(cells: list[dict[str, Any]], profiles: list[Profile]) -> Table:
    out = Table(title="playback QoE: KPI service (from the SDK's events) | page's own measurement")
    for col in ("profile", "arm", "views"):
        out.add_column(col)
    for col in ("startup p50 / p90 s", "startup mean s", "rebuffer %", "views w/ buffering"):
        out.add_column(col, justify="right")
    for col in ("page: startup p50 / p90 s", "page: rebuffer %", "page: w/ buffering"):
        out.add_column(col, justify="right")
    link = {p.name: f"{p.down_kbps / 1000:g} Mbit/s, {p.rtt_ms} ms" for p in profiles}
    for c in cells:
        k, p = c["kpi"], c["page"]
        out.add_row(
            link.get(c["profile"], c["profile"]),
            "HLS ladder (hls.js)" if c["arm"] == "ladder" else "MP4 progressive",
            f"{k['views']}" + (f" ({p['cut_at_cap']} cut)" if p["cut_at_cap"] else ""),
            f"{_fmt_s(k['startup_p50_s'])} / {_fmt_s(k['startup_p90_s'])}",
            _fmt_s(k["startup_mean_s"]),
            _pct(k["rebuffer"]),
            _pct(k["views_with_buffering"]),
            f"{_fmt_s(p['startup_p50_s'])} / {_fmt_s(p['startup_p90_s'])}",
            _pct(p["rebuffer"]),
            _pct(p["views_with_buffering"]),
        )
    return out


def print_goals(console: Console, checks: list[tuple[str, str, bool | None]]) -> None:
    for name, figure, ok in checks:
        verdict = "[dim]no data[/dim]" if ok is None else "[green]PASS" if ok else "[red]FAIL"
        console.print(f"goal {name}: {figure} {verdict}")


def parse_args(argv: list[str] | None) -> tuple[Plan, bool, Path | None]:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument(
        "--plays", type=int, help="views per profile and arm (default 3; 1 with --quick)"
    )
    ap.add_argument(
        "--profiles",
        default=",".join(p.name for p in PROFILES),
        help="profiles to run (default: all of 1.6M,9M,30M)",
    )
    ap.add_argument(
        "--cap",
        type=float,
        default=5 * CLIP_SECONDS,
        help="a view still playing after this many seconds ends as user_exit (default 300)",
    )
    ap.add_argument(
        "--quick",
        action="store_true",
        help=f"smoke run: {QUICK_SECONDS} s of the clip, 1 view each unless --plays says",
    )
    ap.add_argument(
        "--hls-config",
        type=json.loads,
        default=CONSOLE_HLS_CONFIG,
        metavar="JSON",
        help="hls.js options for the ladder arm (default: the console player's, "
        f"{json.dumps(CONSOLE_HLS_CONFIG)}; '{{}}' for hls.js' own defaults)",
    )
    ap.add_argument("--json", action="store_true", help="print the results as JSON only")
    ap.add_argument("--save", type=Path, metavar="FILE", help="also write the JSON to FILE")
    args = ap.parse_args(argv)
    wanted = args.profiles.split(",")
    profiles = [p for p in PROFILES if p.name in wanted]
    if not profiles:
        ap.error(f"no profile among {wanted}; choose from {[p.name for p in PROFILES]}")
    plays = max(1, args.plays if args.plays is not None else 1 if args.quick else 3)
    cap = min(args.cap, 120.0) if args.quick else args.cap
    plan = Plan(plays, args.quick, profiles, cap, 600.0, args.hls_config)
    return plan, args.json, args.save


def main(argv: list[str] | None = None) -> int:
    plan, as_json, save = parse_args(argv)
    console = Console(stderr=as_json, width=None if sys.stdout.isatty() else 170)
    started = datetime.now(UTC)
    result = run(plan, lambda msg: console.print(f"[dim]{msg}[/dim]"))
    cells = [cohort(result, p.name, arm) for p in plan.profiles for arm in ARMS]
    checks = goals(cells)
    info = machine()
    doc = {
        "started": started.isoformat(timespec="seconds"),
        "machine": info,
        "plan": asdict(plan),
        "clip": result["clip"],
        "ready_s": result["ready_s"],
        "renditions": result["renditions"],
        "load_1m": result["load"],
        "cohorts": cells,
        "goals": [{"goal": g, "figure": f, "pass": ok} for g, f, ok in checks],
        "plays": [asdict(p) | {"rebuffer": round(p.rebuffer, 4)} for p in result["plays"]],
        "kpi_answers": result["kpis"],
    }
    if save:
        save.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    if as_json:
        print(json.dumps(doc, indent=2, default=str))
        return 0
    load = result["load"]
    console.print(
        f"{started:%Y-%m-%d %H:%M} UTC, {info['cpus']} CPUs ({info['cpu']}), load (1 min) "
        f"{load['min']:.2f} to {load['max']:.2f} during the run; clip ready in "
        f"{result['ready_s']} s; {plan.plays} view(s) per profile and arm"
        + (f", {QUICK_SECONDS} s each" if plan.quick else "")
    )
    console.print(table(cells, plan.profiles))
    print_goals(console, checks)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
