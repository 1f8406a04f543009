"""Telemetry ingest over HTTP under wrk: events/s and server CPU per 1,000 events of
`reelout serve` taking batches of 100 events (unique event_ids), next to a bare ASGI app on the
same uvicorn settings that only parses the same batches; and a kill -9 mid-load that counts the
events stored against the events answered as accepted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ROOT, Server, UsageSampler, free_port, scratch_postgres, work_dir
from ofrep_bulk import (
    LUA_COMMON,
    Plan,
    _popen,
    client_key,
    machine,
    settle,
    start_ours,
    wrk,
)

GOAL_EVENTS_PER_S = 20_000.0
ENVIRONMENT = "production"
PATH = "/api/v1/telemetry/events"
BATCH = 100

# -- the batches: 100 events, 70 % heartbeat, 20 % playing, 10 % upload_completed -------------

# The event_id is the run's random token, the wrk thread and a counter: unique in every run.
LUA_EVENTS = """
local n = 0
local platforms = {"ios", "android", "web", "macos"}
local arms = {"on", "off"}
local head = '{"event_id":"%%s-%%04x-4000-8000-%%012x","viewer_id":"viewer-%%d",' ..
  '"session_id":"s-%%d","view_id":"v-%%d","seq":%%d,"client_time":"%(now)s",' ..
  '"platform":"%%s","app_version":"2.%%d.0","player":"media_kit","video_id":"vid-%%d",' ..
  '"flags":{"use_enhanced_video_ui":"%%s","use_tus_upload":"%%s"},'
function event()
  n = n + 1
  local viewer = (id * 7919 + n) %% 50000
  local common = string.format(head, "%(token)s", id, n, viewer, viewer, n %% 997, n, platforms[n %% 4 + 1], n %% 6, n %% 300, arms[viewer %% 2 + 1], arms[(viewer + 1) %% 2 + 1])
  local kind = n %% 10
  if kind < 7 then
    return common .. string.format(
      '"type":"heartbeat","playhead_ms":%%d,"watch_ms":%%d,"rebuffer_ms":%%d,' ..
      '"rebuffer_count":%%d,"startup_ms":%%d}', n %% 600000, n %% 600000, n %% 4000, n %% 3,
      800 + n %% 2000)
  elseif kind < 9 then
    return common .. '"type":"playing","playhead_ms":0}'
  end
  return common .. string.format(
    '"type":"upload_completed","bytes":%%d,"duration_ms":%%d,"method":"tus","attempts":%%d}',
    100000000 + n %% 1000, 60000 + n %% 90000, 1 + n %% 2)
end
function request()
  local parts = {}
  for i = 1, %(batch)d do
    parts[i] = event()
  end
  return wrk.format(nil, nil, nil, "[" .. table.concat(parts, ",") .. "]")
end
"""

# The kill run: sum the `accepted` of every 200 answer (per thread, summed in done()).
LUA_COUNTING = """
accepted = 0
answers = 0
local threads = {}
function setup(thread)
  n_threads = n_threads + 1
  thread:set("id", n_threads)
  table.insert(threads, thread)
end
function response(status, headers, body)
  if status == 200 then
    local a = string.match(body, '"accepted":(%%d+)')
    if a then
      accepted = accepted + tonumber(a)
      answers = answers + 1
    end
  end
end
local base_done = done
function done(summary, latency, requests)
  local total, count = 0, 0
  for _, t in ipairs(threads) do
    total = total + t:get("accepted")
    count = count + t:get("answers")
  end
  io.write(string.format('COUNTED {"accepted":%%d,"answers":%%d}\\n', total, count))
  base_done(summary, latency, requests)
end
"""


def lua_script(key: str, token: str, counting: bool = False) -> str:
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    script = LUA_COMMON % {"key": key}
    script += LUA_EVENTS % {"now": now, "token": token, "batch": BATCH}
    return script + (LUA_COUNTING % {} if counting else "")


# -- the reference: a bare ASGI app that parses the batch with orjson and discards it ----------


def limit_app() -> Any:
    """ASGI app: reads the body, parses it with orjson, answers what reelout answers."""
    import orjson

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                kind = (await receive())["type"].replace("lifespan.", "")
                await send({"type": f"lifespan.{kind}.complete"})
                if kind == "shutdown":
                    return
        if scope["type"] != "http":
            return
        chunks, more = [], True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        if scope["method"] != "POST":  # the bench's "is it up" probe
            await send({"type": "http.response.start", "status": 204, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        events = orjson.loads(b"".join(chunks))
        body = orjson.dumps({"accepted": len(events), "duplicates": 0, "rejected": []})
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


def serve_limit(port: int, workers: int) -> None:
    """The reference process: `reelout serve`'s uvicorn.run arguments, with limit_app."""
    import uvicorn

    uvicorn.run(
        "telemetry_ingest:limit_app",
        factory=True,
        workers=workers,
        app_dir=str(Path(__file__).resolve().parent),
        host="127.0.0.1",
        port=port,
        log_config=None,
        access_log=False,
        proxy_headers=False,
        timeout_graceful_shutdown=10,
    )


def start_limit(folder: Path, workers: int) -> Server:
    port = free_port()
    cmd = [sys.executable, str(Path(__file__).resolve()), "--serve-limit", str(port)]
    cmd += ["--workers", str(workers)]
    return _popen("limit", cmd, dict(os.environ), folder, port)


def started(start: Callable[[], Server], tries: int = 4) -> Server:
    """Starts a server, again when it fails: on a busy machine, a uvicorn worker whose imports
    take over 5 s fails the supervisor's health check and `--workers 2` may not come up."""
    for attempt in range(tries):
        try:
            return start()
        except RuntimeError:
            if attempt == tries - 1:
                raise
    raise AssertionError("unreachable")


# -- counting what is stored --------------------------------------------------------------------


def stored(folder: Path, database_url: str | None) -> int:
    """Rows in telemetry_events, read from the database itself."""
    query = "SELECT count(*) FROM telemetry_events"
    if database_url:
        import psycopg

        with psycopg.connect(database_url.replace("+psycopg", ""), connect_timeout=5) as conn:
            row = conn.execute(query).fetchone()
    else:
        with contextlib.closing(sqlite3.connect(folder / "data" / "reelout.db")) as conn:
            row = conn.execute(query).fetchone()
    return int(row[0]) if row else 0


# -- runs ---------------------------------------------------------------------------------------


@dataclass
class Run:
    """One wrk run against one server."""

    config: str
    path: str
    round_no: int
    seconds: float
    requests: int
    errors: int
    p50_ms: float
    p99_ms: float
    server_cpu_s: float
    wrk_cpu_s: float
    load_1m: float

    @property
    def events_per_s(self) -> float:
        return BATCH * self.requests / self.seconds if self.seconds else 0.0

    @property
    def cpu_ms_per_1000(self) -> float:
        return 1e6 * self.server_cpu_s / (BATCH * self.requests) if self.requests else 0.0


def fresh(script: Path) -> Path:
    """The script again with a new run token: wrk restarts its counters on every run, so each run
    needs its own event_ids (or the events are answered as duplicates)."""
    text = script.read_text()
    key = text.split('wrk.headers["Authorization"] = "Bearer ', 1)[1].split('"', 1)[0]
    script.write_text(lua_script(key, secrets.token_hex(4)))
    return script


def measure(plan: Plan, config: str, name: str, server: Server, script: Path, rnd: int) -> Run:
    settle(server)
    fresh(script)
    with UsageSampler(server.pid) as sampler:
        figures, wrk_cpu = wrk(plan, f"http://127.0.0.1:{server.port}{PATH}", script, plan.seconds)
        settle(server)
    errors = sum(figures[k] for k in ("connect", "read", "write", "status", "timeout"))
    return Run(
        config,
        name,
        rnd,
        figures["duration_us"] / 1e6,
        figures["requests"],
        errors,
        figures["p50_us"] / 1000,
        figures["p99_us"] / 1000,
        sampler.usage.cpu_seconds,
        wrk_cpu,
        os.getloadavg()[0],
    )


def profile(plan: Plan, server: Server, script: Path, out: Path) -> None:
    """One more wrk run with py-spy sampling the server's processes (GIL holder only);
    writes collapsed stacks to `out`."""
    spy = shutil.which("py-spy") or str(ROOT / ".venv/bin/py-spy")
    cmd = [spy, "record", "--pid", str(server.pid), "--subprocesses", "--gil", "--nonblocking"]
    cmd += ["--rate", "200", "--duration", str(plan.seconds), "--format", "raw", "-o", str(out)]
    settle(server)
    fresh(script)
    with subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as sampler:
        time.sleep(0.5)
        wrk(plan, f"http://127.0.0.1:{server.port}{PATH}", script, plan.seconds)
        sampler.wait()


def run_config(
    plan: Plan, database_url: str | None, say: Callable[[str], None], tmp: Path
) -> tuple[list[Run], dict[str, Any]]:
    """reelout and the reference with the same workers, alternating; then the stored count."""
    workers = plan.workers[0]
    config = f"{'postgresql' if database_url else 'sqlite'}, {workers} workers"
    folder = tmp / config.split(",")[0]
    folder.mkdir()
    servers: list[Server] = []
    runs: list[Run] = []
    try:
        ours = started(lambda: start_ours(folder, workers, database_url, plan.settings))
        servers.append(ours)
        key = client_key(ours, ENVIRONMENT, "telemetry-bench")
        limit = started(lambda: start_limit(folder, workers))
        servers.append(limit)
        scripts = {}
        for name, server in (("reelout", ours), ("bare parse", limit)):
            script = folder / f"{name.replace(' ', '-')}.lua"
            script.write_text(lua_script(key, secrets.token_hex(4)))
            scripts[name] = (server, script)
            say(f"{config}: warm-up {name} ({plan.warmup} s)")
            wrk(plan, f"http://127.0.0.1:{server.port}{PATH}", script, plan.warmup)
        base = stored(folder, database_url)
        for rnd in range(plan.repeat):
            for name in ("reelout", "bare parse")[:: 1 if rnd % 2 == 0 else -1]:
                say(f"{config}: round {rnd + 1}/{plan.repeat}, {name} ({plan.seconds} s)")
                runs.append(measure(plan, config, name, *scripts[name], rnd))
        sent = sum(BATCH * r.requests for r in runs if r.path == "reelout")
        check = {"config": config, "answered": sent, "stored": stored(folder, database_url) - base}
        if plan.profile:
            out = plan.profile / f"telemetry-{folder.name}.txt"
            say(f"{config}: profiling reelout with py-spy ({plan.seconds} s) -> {out}")
            profile(plan, *scripts["reelout"], out)
    finally:
        for server in servers:
            server.stop()
    return runs, check


def kill_nine(plan: Plan, database_url: str | None, say: Callable[[str], None], tmp: Path) -> dict:
    """wrk for plan.seconds; SIGKILL every process of the server halfway; restart it on the same
    data and count the stored events against the `accepted` of every answer wrk received."""
    folder = tmp / f"kill-{'postgresql' if database_url else 'sqlite'}"
    folder.mkdir()
    ours = started(lambda: start_ours(folder, plan.workers[0], database_url, plan.settings))
    key = client_key(ours, ENVIRONMENT, "telemetry-bench")
    script = folder / "counting.lua"
    script.write_text(lua_script(key, secrets.token_hex(4), counting=True))
    cmd = ["wrk", f"-t{plan.threads}", f"-c{plan.connections}", f"-d{plan.seconds}s"]
    cmd += ["--timeout", "10s", "-s", str(script), f"http://127.0.0.1:{ours.port}{PATH}"]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) as load:
        time.sleep(plan.seconds / 2)
        victims = [psutil.Process(ours.pid), *psutil.Process(ours.pid).children(recursive=True)]
        say(f"kill -9 of {[p.pid for p in victims]} mid-load")
        for proc in victims:
            with contextlib.suppress(psutil.Error):
                proc.send_signal(signal.SIGKILL)
        ours.proc.wait()
        ours.log.close()
        out, _ = load.communicate()
    line = next(x for x in out.splitlines() if x.startswith("COUNTED "))
    counted = json.loads(line.removeprefix("COUNTED "))
    again = started(lambda: start_ours(folder, plan.workers[0], database_url, plan.settings))
    try:
        found = stored(folder, database_url)
    finally:
        again.stop()
    lost = max(0, counted["accepted"] - found)
    return {"database": folder.name.split("-")[1], **counted, "stored": found, "lost": lost}


def run(plan: Plan, say: Callable[[str], None], kill: bool, ingest: bool) -> dict[str, Any]:
    runs: list[Run] = []
    checks: list[dict[str, Any]] = []
    kills: list[dict[str, Any]] = []
    with work_dir("telemetry-ingest-") as tmp:
        urls: list[str | None] = [None]
        with contextlib.ExitStack() as stack:
            if plan.database and ingest:
                urls.append(stack.enter_context(scratch_postgres(plan.database, "bench_telemetry")))
            for url in urls if ingest else []:
                found, check = run_config(plan, url, say, tmp)
                runs += found
                checks.append(check)
        if kill:
            urls = [None]
            with contextlib.ExitStack() as stack:
                if plan.database:
                    urls.append(
                        stack.enter_context(scratch_postgres(plan.database, "bench_telemetry"))
                    )
                for url in urls:
                    kills.append(kill_nine(plan, url, say, tmp))
    return {"runs": runs, "stored": checks, "kill": kills}


# -- output -------------------------------------------------------------------------------------


def _median(runs: list[Run]) -> Run:
    ordered = sorted(runs, key=lambda r: r.events_per_s)
    return ordered[(len(ordered) - 1) // 2]


def ingest_table(runs: list[Run]) -> Table:
    """Each configuration's median run of reelout and of the reference, and their ratio."""
    table = Table(title=f"batches of {BATCH} events (median run of each)")
    for col in ("config", "server", "events/s", "CPU ms / 1,000 ev", "p50 ms", "p99 ms"):
        table.add_column(col, justify="left" if col in ("config", "server") else "right")
    table.add_column("errors", justify="right")
    table.add_column("load 1m", justify="right")
    for config in dict.fromkeys(r.config for r in runs):
        mine = {
            p: _median([r for r in runs if r.config == config and r.path == p])
            for p in ("reelout", "bare parse")
        }
        for name, r in mine.items():
            table.add_row(
                config,
                name,
                f"{r.events_per_s:,.0f}",
                f"{r.cpu_ms_per_1000:.1f}",
                f"{r.p50_ms:.1f}",
                f"{r.p99_ms:.1f}",
                str(r.errors),
                f"{r.load_1m:.2f}",
            )
        ours, ref = mine["reelout"], mine["bare parse"]
        table.add_row(
            config,
            "ratio reelout ÷ bare",
            f"{ours.events_per_s / ref.events_per_s:.2f}",
            f"{ours.cpu_ms_per_1000 / ref.cpu_ms_per_1000:.1f}",
            "",
            "",
            "",
            "",
        )
    return table


def print_tables(console: Console, result: dict[str, Any]) -> None:
    runs: list[Run] = result["runs"]
    if runs:
        console.print(ingest_table(runs))
    for check in result["stored"]:
        console.print(
            f"{check['config']}: {check['answered']:,} events answered in the measured "
            f"runs, {check['stored']:,} stored"
        )
    for k in result["kill"]:
        console.print(
            f"kill -9 ({k['database']}): {k['accepted']:,} events answered as accepted "
            f"in {k['answers']:,} answers, {k['stored']:,} stored after restart, "
            f"lost = {k['lost']}"
        )
    if not runs:
        return
    best = max(
        (
            _median([r for r in runs if r.config == c and r.path == "reelout"])
            for c in dict.fromkeys(r.config for r in runs)
        ),
        key=lambda r: r.events_per_s,
    )
    verdict = "PASS" if best.events_per_s >= GOAL_EVENTS_PER_S else "FAIL"
    console.print(
        f"goal ≥ {GOAL_EVENTS_PER_S:,.0f} events/s: best {best.events_per_s:,.0f} "
        f"({best.config}) {verdict}"
    )


def parse_args(argv: list[str] | None) -> tuple[Plan, bool, tuple[bool, bool], int | None]:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--workers", type=int, default=2, help="uvicorn workers (default 2)")
    ap.add_argument("--seconds", type=int, default=10, help="each measured wrk run (default 10)")
    ap.add_argument("--repeat", type=int, default=3, help="rounds per configuration (default 3)")
    ap.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    ap.add_argument("--connections", type=int, default=16, help="wrk connections (default 16)")
    ap.add_argument(
        "--database",
        help="also run on PostgreSQL: a server URL such as "
        "postgresql://postgres@127.0.0.1:5432/test (a scratch database is made and dropped)",
    )
    ap.add_argument("--no-kill", action="store_true", help="skip the kill -9 runs")
    ap.add_argument("--only-kill", action="store_true", help="only the kill -9 runs")
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="REELOUT_X=VALUE",
        help="a setting for reelout serve (repeatable)",
    )
    ap.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="after the runs, profile reelout with py-spy (in the venv) into DIR",
    )
    ap.add_argument("--quick", action="store_true", help="smoke run: 1 round of 3 s")
    ap.add_argument("--json", action="store_true", help="print the results as JSON only")
    ap.add_argument("--serve-limit", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    seconds, repeat = (3, 1) if args.quick else (args.seconds, max(1, args.repeat))
    plan = Plan([args.workers], seconds, 2, repeat, args.threads, args.connections, args.database)
    plan.settings = dict(item.split("=", 1) for item in args.set)
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
        plan.profile = args.profile.resolve()
    return plan, args.json, (not args.no_kill, not args.only_kill), args.serve_limit


def main(argv: list[str] | None = None) -> int:
    plan, as_json, (kill, ingest), limit_port = parse_args(argv)
    if limit_port is not None:
        serve_limit(limit_port, plan.workers[0])
        return 0
    if shutil.which("wrk") is None:
        raise SystemExit("this bench needs wrk on PATH (Debian: apt-get install wrk)")
    console = Console(stderr=as_json, width=None if sys.stdout.isatty() else 170)
    started = datetime.now(UTC)
    result = run(plan, lambda msg: console.print(f"[dim]{msg}[/dim]"), kill, ingest)
    if as_json:
        doc = {
            "started": started.isoformat(timespec="seconds"),
            "machine": machine(),
            "plan": asdict(plan),
            "runs": [
                asdict(r)
                | {
                    "events_per_s": round(r.events_per_s),
                    "cpu_ms_per_1000_events": round(r.cpu_ms_per_1000, 2),
                }
                for r in result["runs"]
            ],
            "stored": result["stored"],
            "kill": result["kill"],
        }
        print(json.dumps(doc, indent=2, default=str))
    else:
        info = machine()
        console.print(
            f"{started:%Y-%m-%d %H:%M} UTC, {info['cpus']} CPUs ({info['cpu']}), "
            f"load {os.getloadavg()[0]:.2f}"
        )
        console.print("reelout serve with REELOUT_ACCESS_LOG=false REELOUT_EMBEDDED_WORKER=false")
        print_tables(console, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
