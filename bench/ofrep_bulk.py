"""OFREP bulk evaluation over HTTP (20 flags): req/s and latency of `reelout serve` under wrk,
on the 200 path (a new targeting key per request) and the 304 path (If-None-Match), next to a
bare ASGI app on the same uvicorn settings that answers with the bytes of a real bulk response.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    ROOT,
    TOKEN,
    Server,
    UsageSampler,
    _wait_up,
    free_port,
    machine,
    reelout_env,
    scratch_postgres,
    work_dir,
)

GOAL_RPS = 3000.0
GOAL_P99_MS = 25.0
ENVIRONMENT = "production"
PATH = "/ofrep/v1/evaluate/flags"
PATHS = ("ours 200", "ours 304", "limit", "ours 200 @3k", "ours 304 @3k")
# The paced runs offer the goal's rate (each connection waits between requests), so their p99
# is the latency an app sees at 3,000 req/s; the saturated runs give the most req/s, where p99
# is queueing in front of a full CPU.
FIXED_CONTEXT = {
    "targetingKey": "user-fixed-0001",
    "cohort": "beta",
    "country": "DE",
    "plan": "pro",
    "email": "fixed@example.com",
    "appVersion": "2.4.1",
}
LIMIT_BODY_ENV = "OFREP_BENCH_LIMIT_BODY"
LIMIT_ETAG_ENV = "OFREP_BENCH_LIMIT_ETAG"

# -- the flag set: 20 flags of the shapes apps really have ---------------------------------------

BOOL = {"on": True, "off": False}
EU = ["AT", "BE", "DE", "DK", "ES", "FI", "FR", "IE", "IT", "NL", "PL", "PT", "SE"]
PREREQ_FLAGS = (
    "use_tus_upload",
    "use_direct_file_upload",
    "use_enhanced_video_ui",
    "use_media_kit",
    "use_video_cache",
    "use_adaptive_bitrate",
    "use_video_preload",
)


def _flag(variants: dict[str, Any], default: str, **extra: Any) -> dict[str, Any]:
    return {"state": "ENABLED", "variants": variants, "defaultVariant": default, **extra}


def _split(*weights: tuple[str, int]) -> dict[str, Any]:
    return {"fractional": [[variant, weight] for variant, weight in weights]}


def flag_set() -> dict[str, Any]:
    """Twenty flags: the video-rollout template's prerequisite chain (7 `use_*` flags following
    `beta_mode`, itself a `$ref` list rule), static flags, kill-switched flags, fractional
    rollouts (bool, string and number variants), list membership through `$ref` evaluators,
    a list rule with a rollout inside, string suffix and semantic-version rules."""
    described = {"metadata": {"owner": "video-team"}}
    flags: dict[str, Any] = {
        "beta_mode": _flag(BOOL, "off", targeting={"if": [{"$ref": "is_beta"}, "on", "off"]}),
        **{
            key: _flag(BOOL, "off", targeting={"if": [{"var": "$flags.beta_mode"}, "on", "off"]})
            for key in PREREQ_FLAGS
        },
        "enable_debug_logs": _flag(BOOL, "off", **described),
        "player": _flag({"media_kit": "media_kit", "video_player": "video_player"}, "media_kit"),
        "theme": _flag(
            {"light": {"primary": "#0a84ff", "radius": 8}, "dark": {"primary": "#64d2ff"}}, "light"
        ),
        "legacy_base64_upload": {**_flag(BOOL, "off"), "state": "DISABLED"},
        "comments": {**_flag(BOOL, "on"), "state": "DISABLED"},
        "new_checkout": _flag(BOOL, "off", targeting=_split(("on", 10), ("off", 90))),
        "recommendations": _flag(
            {"v1": "v1", "v2": "v2"}, "v1", targeting=_split(("v1", 50), ("v2", 50))
        ),
        "upload_chunk_mib": _flag(
            {"small": 5, "medium": 16, "large": 64},
            "small",
            targeting=_split(("small", 34), ("medium", 33), ("large", 33)),
        ),
        "eu_consent_banner": _flag(BOOL, "off", targeting={"if": [{"$ref": "in_eu"}, "on", "off"]}),
        "hd_downloads": _flag(
            BOOL,
            "off",
            targeting={
                "if": [{"$ref": "paid"}, _split(("on", 25), ("off", 75)), "off"],
            },
        ),
        "staff_tools": _flag(BOOL, "off", targeting={"if": [{"$ref": "is_staff"}, "on", "off"]}),
        "new_player_min_version": _flag(
            BOOL,
            "off",
            targeting={"if": [{"sem_ver": [{"var": "appVersion"}, ">=", "2.3.0"]}, "on", "off"]},
        ),
    }
    return {
        "$schema": "https://flagd.dev/schema/v0/flags.json",
        "metadata": {"flagSetId": "video-rollout", "version": "7"},
        "flags": flags,
        "$evaluators": {
            "is_beta": {
                "or": [
                    {"in": [{"var": "cohort"}, ["beta"]]},
                    {"in": [{"var": "targetingKey"}, ["user-1-1", "user-2-1", "qa-7"]]},
                ]
            },
            "in_eu": {"in": [{"var": "country"}, EU]},
            "paid": {"in": [{"var": "plan"}, ["pro", "team"]]},
            "is_staff": {"ends_with": [{"var": "email"}, "@reelout.dev"]},
        },
    }


# -- wrk scripts -------------------------------------------------------------------------------

LUA_COMMON = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %(key)s"
local n_threads = 0
function setup(thread)
  n_threads = n_threads + 1
  thread:set("id", n_threads)
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%%d,"duration_us":%%d,"bytes":%%d,"connect":%%d,"read":%%d,' ..
    '"write":%%d,"status":%%d,"timeout":%%d,"p50_us":%%.0f,"p90_us":%%.0f,"p99_us":%%.0f,' ..
    '"max_us":%%.0f,"mean_us":%%.1f}\\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
end
"""

# A new targeting key on every request (thread id and a counter), other attributes cycling.
LUA_VARYING = """
local n = 0
local cohorts = {"control", "control", "control", "beta"}
local countries = {"DE", "FR", "NL", "US", "GB", "ES", "IT", "PL", "BR"}
local plans = {"free", "free", "pro", "team"}
local domains = {"example.com", "mail.test", "reelout.dev", "corp.test", "web.test"}
function request()
  n = n + 1
  local body = string.format(
    '{"context":{"targetingKey":"user-%d-%d","cohort":"%s","country":"%s","plan":"%s",' ..
    '"email":"u%d@%s","appVersion":"2.%d.0"}}',
    id, n, cohorts[n % 4 + 1], countries[n % 9 + 1], plans[n % 4 + 1], n,
    domains[n % 5 + 1], n % 6)
  return wrk.format(nil, nil, nil, body)
end
"""

# The same context every time, with the ETag of its last answer: the 304 path.
LUA_CONDITIONAL = """
wrk.headers["If-None-Match"] = %(etag)s
wrk.body = %(body)s
"""


# Each connection waits between its requests: connections / delay = the offered rate.
LUA_PACED = """
function delay()
  return %(ms).3f
end
"""


def _lua_string(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def lua_script(kind: str, key: str, etag: str = "") -> str:
    script = LUA_COMMON % {"key": key}
    if kind == "varying":
        return script + LUA_VARYING
    body = json.dumps({"context": FIXED_CONTEXT}, separators=(",", ":"))
    return script + LUA_CONDITIONAL % {"etag": _lua_string(etag), "body": _lua_string(body)}


# -- the HTTP stack's ceiling: a bare ASGI app with the precomputed answer -------------------------


def limit_app() -> Any:
    """ASGI app: reads the whole request body, answers 200 with a real bulk response's bytes."""
    body = Path(os.environ[LIMIT_BODY_ENV]).read_bytes()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"etag", os.environ[LIMIT_ETAG_ENV].encode()),
        (b"cache-control", b"no-cache"),
    ]
    start = {"type": "http.response.start", "status": 200, "headers": headers}
    answer = {"type": "http.response.body", "body": body}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                kind = message["type"].replace("lifespan.", "")
                await send({"type": f"lifespan.{kind}.complete"})
                if kind == "shutdown":
                    return
        if scope["type"] != "http":
            return
        more = True
        while more:
            more = (await receive()).get("more_body", False)
        await send(start)
        await send(answer)

    return app


def serve_limit(port: int, workers: int) -> None:
    """The limit server process: `reelout serve`'s uvicorn.run arguments, with limit_app."""
    import uvicorn

    uvicorn.run(
        limit_app() if workers == 1 else "ofrep_bulk:limit_app",
        factory=workers > 1,
        workers=workers,
        app_dir=str(Path(__file__).resolve().parent),
        host="127.0.0.1",
        port=port,
        log_config=None,
        access_log=False,
        proxy_headers=False,
        timeout_graceful_shutdown=10,
    )


# -- servers ----------------------------------------------------------------------------------


def _popen(name: str, cmd: list[str], env: dict[str, str], folder: Path, port: int) -> Server:
    log = (folder / f"{name}-{port}.log").open("wb")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=log, cwd=folder)
    server = Server(name, proc, port, log, {"Authorization": f"Bearer {TOKEN}"})
    try:
        _wait_up(server)
    except Exception:
        server.stop()
        raise
    return server


def start_ours(
    folder: Path, workers: int, database_url: str | None, settings: dict[str, str]
) -> Server:
    """`reelout serve --workers N`: no access log, no OFREP rate limit, no embedded worker;
    `settings` adds or overrides REELOUT_* variables."""
    data = folder / "data"
    data.mkdir(parents=True, exist_ok=True)
    port = free_port()
    extra = {"REELOUT_ACCESS_LOG": "false"}
    if database_url:
        extra["REELOUT_DATABASE_URL"] = database_url
    extra.update(settings)
    cmd = [str(ROOT / ".venv/bin/reelout"), "serve", "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--workers", str(workers)]
    return _popen("reelout", cmd, reelout_env(data, **extra), folder, port)


def start_limit(folder: Path, workers: int, body: bytes, etag: str) -> Server:
    (folder / "limit-body.json").write_bytes(body)
    port = free_port()
    env = dict(os.environ)
    env.update({LIMIT_BODY_ENV: str(folder / "limit-body.json"), LIMIT_ETAG_ENV: etag})
    cmd = [sys.executable, str(Path(__file__).resolve()), "--serve-limit", str(port)]
    cmd += ["--workers", str(workers)]
    return _popen("limit", cmd, env, folder, port)


def call(
    server: Server, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    conn = server.connect(timeout=30)
    data = json.dumps(body).encode() if body is not None else None
    hdrs = {**(headers or server.headers)}
    if data is not None:
        hdrs["Content-Type"] = "application/json"
    conn.request(method, path, body=data, headers=hdrs)
    resp = conn.getresponse()
    payload = resp.read()
    conn.close()
    return resp.status, {k.lower(): v for k, v in resp.getheaders()}, payload


def _expect(what: str, status: int, wanted: tuple[int, ...], body: bytes) -> None:
    if status not in wanted:
        raise RuntimeError(f"{what}: HTTP {status} (wanted {wanted}) {body[:300]!r}")


@dataclass
class Loaded:
    """What the bench needs from a loaded server: the client key and the fixed context's answer."""

    key: str
    etag: str
    body: bytes


def client_key(server: Server, environment: str, name: str) -> str:
    """A new client key of `environment` (the admin API, with the bench's admin token)."""
    spec = {"scope": "client", "environment": environment, "name": name}
    status, _, body = call(server, "POST", "/api/v1/keys", spec)
    _expect("POST /api/v1/keys", status, (200, 201), body)
    key: str = json.loads(body)["key"]
    return key


def load(server: Server) -> Loaded:
    """PUT the flag set, create a client key, and check both paths once by hand."""
    status, _, body = call(server, "PUT", f"/api/v1/environments/{ENVIRONMENT}/flagset", flag_set())
    _expect("PUT flagset", status, (200, 201), body)
    key = client_key(server, ENVIRONMENT, "ofrep-bench")
    auth = {"Authorization": f"Bearer {key}"}
    status, headers, body = call(server, "POST", PATH, {"context": FIXED_CONTEXT}, auth)
    _expect("bulk evaluation", status, (200,), body)
    answer = json.loads(body)
    if len(answer["flags"]) != 20 or any("errorCode" in f for f in answer["flags"]):
        raise RuntimeError(f"bulk evaluation: expected 20 evaluated flags, got {answer}")
    etag = headers["etag"]
    again = call(server, "POST", PATH, {"context": FIXED_CONTEXT}, auth | {"If-None-Match": etag})
    _expect("bulk evaluation with If-None-Match", again[0], (304,), again[2])
    return Loaded(key, etag, body)


# -- wrk --------------------------------------------------------------------------------------


@dataclass
class Run:
    """One wrk run against one path."""

    config: str
    path: str
    round_no: int
    seconds: float
    requests: int
    bytes: int
    errors: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    server_cpu_s: float
    wrk_cpu_s: float
    tail_s: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def bytes_per_response(self) -> float:
        return self.bytes / self.requests if self.requests else 0.0

    @property
    def server_ms_per_request(self) -> float:
        return 1000 * self.server_cpu_s / self.requests if self.requests else 0.0


@dataclass
class Plan:
    workers: list[int]
    seconds: int
    warmup: int
    repeat: int
    threads: int
    connections: int
    database: str | None = None
    settings: dict[str, str] = field(default_factory=dict)
    profile: Path | None = None


def wrk(plan: Plan, url: str, script: Path, seconds: int) -> tuple[dict[str, Any], float]:
    """Runs wrk; returns its done() figures and the CPU-seconds wrk itself used."""
    cmd = ["wrk", f"-t{plan.threads}", f"-c{plan.connections}", f"-d{seconds}s"]
    cmd += ["--timeout", "10s", "-s", str(script), url]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    lines = [line for line in out.splitlines() if line.startswith("BENCH_JSON ")]
    if not lines:
        raise RuntimeError(f"wrk printed no figures:\n{out}")
    return json.loads(lines[-1].removeprefix("BENCH_JSON ")), cpu


def _tree_cpu(proc: psutil.Process) -> float:
    total = 0.0
    with contextlib.suppress(psutil.Error):
        for p in [proc, *proc.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                times = p.cpu_times()
                total += times.user + times.system
    return total


def settle(server: Server, timeout: float = 60.0) -> float:
    """Waits until the server uses under 5 % of a core over 0.5 s (the previous run's tail, such
    as exposures still being written, must not land on the next run); returns the seconds waited."""
    proc, start = psutil.Process(server.pid), time.monotonic()
    while time.monotonic() - start < timeout:
        before = _tree_cpu(proc)
        time.sleep(0.5)
        if _tree_cpu(proc) - before < 0.025:
            break
    return time.monotonic() - start


def measure(plan: Plan, config: str, path: str, server: Server, script: Path, round_no: int) -> Run:
    url = f"http://127.0.0.1:{server.port}{PATH}"
    settle(server)
    with UsageSampler(server.pid) as sampler:  # until idle again: the tail is the run's work too
        figures, wrk_cpu = wrk(plan, url, script, plan.seconds)
        tail = settle(server)
    errors = sum(figures[k] for k in ("connect", "read", "write", "status", "timeout"))
    return Run(
        config,
        path,
        round_no,
        figures["duration_us"] / 1e6,
        figures["requests"],
        figures["bytes"],
        errors,
        figures["p50_us"] / 1000,
        figures["p90_us"] / 1000,
        figures["p99_us"] / 1000,
        figures["max_us"] / 1000,
        sampler.usage.cpu_seconds,
        wrk_cpu,
        tail,
    )


def write_scripts(
    folder: Path, ours: Server, limit: Server, loaded: Loaded, connections: int
) -> dict[str, tuple[Server, Path]]:
    """The wrk script of each path; the limit gets the same varying bodies as ours 200."""
    texts = {
        "ours 200": (ours, "varying", lua_script("varying", loaded.key)),
        "ours 304": (ours, "conditional", lua_script("304", loaded.key, loaded.etag)),
        "limit": (limit, "limit", lua_script("varying", loaded.key)),
    }
    # connections / (delay + latency) = the rate: a delay for 30 % more than the goal leaves room
    # for a few ms of latency, so the paced runs land at about the goal's rate (their req/s shows)
    pace = LUA_PACED % {"ms": connections * 1000 / (GOAL_RPS * 1.3)}
    texts["ours 200 @3k"] = (ours, "varying-paced", texts["ours 200"][2] + pace)
    texts["ours 304 @3k"] = (ours, "conditional-paced", texts["ours 304"][2] + pace)
    scripts = {}
    for name, (server, stem, text) in texts.items():
        (folder / f"{stem}.lua").write_text(text)
        scripts[name] = (server, folder / f"{stem}.lua")
    return scripts


def profile(plan: Plan, server: Server, script: Path, out: Path) -> None:
    """One more wrk run with py-spy sampling the server's processes (only the thread holding the
    GIL); writes collapsed stacks to `out` (flamegraph.pl or speedscope read them)."""
    spy = shutil.which("py-spy") or str(ROOT / ".venv/bin/py-spy")
    cmd = [spy, "record", "--pid", str(server.pid), "--subprocesses", "--gil", "--nonblocking"]
    cmd += ["--rate", "200", "--duration", str(plan.seconds), "--format", "raw", "-o", str(out)]
    settle(server)
    with subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as sampler:
        time.sleep(0.5)
        wrk(plan, f"http://127.0.0.1:{server.port}{PATH}", script, plan.seconds)
        sampler.wait()


def run_config(
    plan: Plan, workers: int, database_url: str | None, say: Callable[[str], None], tmp: Path
) -> list[Run]:
    """One server configuration: ours and the limit with the same worker count, side by side;
    each round runs the three paths in a rotated order."""
    config = f"{'postgresql' if database_url else 'sqlite'}, {workers} worker{'s' * (workers > 1)}"
    folder = tmp / f"{config.replace(', ', '-').replace(' ', '')}"
    folder.mkdir()
    servers: list[Server] = []
    runs: list[Run] = []
    try:
        ours = start_ours(folder, workers, database_url, plan.settings)
        servers.append(ours)
        loaded = load(ours)
        limit = start_limit(folder, workers, loaded.body, loaded.etag)
        servers.append(limit)
        scripts = write_scripts(folder, ours, limit, loaded, plan.connections)
        for name, (server, script) in scripts.items():
            say(f"{config}: warm-up {name} ({plan.warmup} s)")
            wrk(plan, f"http://127.0.0.1:{server.port}{PATH}", script, plan.warmup)
        for round_no in range(plan.repeat):
            for name in PATHS[round_no % 5 :] + PATHS[: round_no % 5]:
                server, script = scripts[name]
                say(f"{config}: round {round_no + 1}/{plan.repeat}, {name} ({plan.seconds} s)")
                runs.append(measure(plan, config, name, server, script, round_no))
        if plan.profile:
            for name in ("ours 200", "ours 304"):
                out = plan.profile / f"{folder.name}-{name.replace(' ', '-')}.txt"
                say(f"{config}: profiling {name} with py-spy ({plan.seconds} s) -> {out}")
                profile(plan, *scripts[name], out)
    finally:
        for server in servers:
            server.stop()
    return runs


def run(plan: Plan, say: Callable[[str], None]) -> list[Run]:
    runs: list[Run] = []
    with work_dir("ofrep-bulk-") as tmp:
        for workers in plan.workers:
            runs += run_config(plan, workers, None, say, tmp)
        if plan.database:
            for workers in plan.workers:
                with scratch_postgres(plan.database, "reelout_ofrep_bench") as url:
                    runs += run_config(plan, workers, url, say, tmp)
    return runs


# -- reporting ----------------------------------------------------------------------------------


def _median(runs: list[Run]) -> Run:
    """The run with the median req/s (the slower of the middle two)."""
    ordered = sorted(runs, key=lambda r: r.rps)
    return ordered[(len(ordered) - 1) // 2]


def _configs(runs: list[Run]) -> list[str]:
    return list(dict.fromkeys(r.config for r in runs))


def _of(runs: list[Run], config: str, path: str) -> list[Run]:
    return [r for r in runs if r.config == config and r.path == path]


def _round_ratio(runs: list[Run], config: str, path: str) -> float:
    """Median over rounds of ours ÷ limit req/s within the round."""
    limit = {r.round_no: r.rps for r in _of(runs, config, "limit")}
    ratios = [r.rps / limit[r.round_no] for r in _of(runs, config, path) if limit.get(r.round_no)]
    return statistics.median(ratios) if ratios else 0.0


def print_tables(console: Console, runs: list[Run], plan: Plan) -> None:
    for config in _configs(runs):
        table = Table(
            title=f"{config}: wrk -t{plan.threads} -c{plan.connections} -d{plan.seconds}s "
            f"(median of {plan.repeat} by req/s)",
            title_justify="left",
        )
        cols: tuple[str, ...] = (
            "path",
            "req/s",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "max ms",
            "vs limit",
        )
        cols += ("server CPU ms/req", "wrk CPU s", "bytes/resp", "errors", "tail s")
        cols += ("req/s each run",)
        for col in cols:
            table.add_column(col, justify="left" if col == "path" else "right")
        for path in PATHS:
            each = _of(runs, config, path)
            m = _median(each)
            ratio = (
                "-"
                if "@" in path or path == "limit"
                else f"{_round_ratio(runs, config, path):.3f}x"
            )
            table.add_row(
                path,
                f"{m.rps:,.0f}",
                f"{m.p50_ms:.1f}",
                f"{m.p90_ms:.1f}",
                f"{m.p99_ms:.1f}",
                f"{m.max_ms:.1f}",
                ratio,
                f"{m.server_ms_per_request:.2f}",
                f"{m.wrk_cpu_s:.1f}",
                f"{m.bytes_per_response:,.0f}",
                str(sum(r.errors for r in each)),
                f"{max(r.tail_s for r in each):.1f}",
                " / ".join(f"{r.rps:,.0f}" for r in each),
            )
        console.print(table)


def goals(runs: list[Run]) -> list[tuple[str, str, bool]]:
    """Per configuration and path: the median run's req/s, and the worst run's p99."""
    out = []
    for config in _configs(runs):
        for path in ("ours 200", "ours 304"):
            each, paced = _of(runs, config, path), _of(runs, config, path + " @3k")
            rps, p99 = _median(each).rps, max(r.p99_ms for r in paced)
            paced_rps = min(r.rps for r in paced)
            errors = any(r.errors for r in each + paced)
            ok = rps >= GOAL_RPS and paced_rps >= GOAL_RPS and p99 < GOAL_P99_MS and not errors
            measured = (
                f"{rps:,.0f} req/s saturated; p99 {p99:.1f} ms at {paced_rps:,.0f} req/s paced"
            )
            out.append((f"{config}, {path}: >= 3,000 req/s, p99 < 25 ms", measured, ok))
    return out


def print_goals(console: Console, checks: list[tuple[str, str, bool]]) -> None:
    table = Table(title="Goals (reelout, OFREP bulk of 20 flags)", title_justify="left")
    for col in ("goal", "measured", "result"):
        table.add_column(col)
    for name, measured, ok in checks:
        table.add_row(name, measured, "[green]PASS[/green]" if ok else "[red]FAIL[/red]")
    console.print(table)


def parse_args(argv: list[str] | None) -> tuple[Plan, bool, int | None]:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--workers", default="1,2", help="worker counts to try (default 1,2)")
    ap.add_argument("--seconds", type=int, default=10, help="each measured wrk run (default 10)")
    ap.add_argument("--repeat", type=int, default=3, help="rounds per configuration (default 3)")
    ap.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    ap.add_argument("--connections", type=int, default=64, help="wrk connections (default 64)")
    ap.add_argument(
        "--database",
        help="also run on PostgreSQL: a server URL such as "
        "postgresql://postgres@127.0.0.1:5432/test (a scratch database is made and dropped)",
    )
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="REELOUT_X=VALUE",
        help="a setting for reelout serve, e.g. --set REELOUT_EXPOSURE_LOG=false (repeatable)",
    )
    ap.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="after the runs, profile each ours path with py-spy (in the venv) into DIR",
    )
    ap.add_argument("--quick", action="store_true", help="smoke run: 1 round of 3 s per path")
    ap.add_argument("--json", action="store_true", help="print the results as JSON only")
    ap.add_argument("--serve-limit", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    workers = [int(w) for w in str(args.workers).split(",") if w.strip()]
    warmup = 2 if args.quick else 3
    seconds, repeat = (3, 1) if args.quick else (args.seconds, max(1, args.repeat))
    settings = dict(item.split("=", 1) for item in args.set)
    if any(not name.startswith("REELOUT_") for name in settings):
        ap.error("--set takes REELOUT_NAME=VALUE")
    plan = Plan(workers, seconds, warmup, repeat, args.threads, args.connections, args.database)
    plan.settings = settings
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
        plan.profile = args.profile.resolve()
    return plan, args.json, args.serve_limit


def main(argv: list[str] | None = None) -> int:
    plan, as_json, limit_port = parse_args(argv)
    if limit_port is not None:
        serve_limit(limit_port, plan.workers[0])
        return 0
    if shutil.which("wrk") is None:
        raise SystemExit("this bench needs wrk on PATH (Debian: apt-get install wrk)")
    console = Console(stderr=as_json, width=None if sys.stdout.isatty() else 170)
    started = datetime.now(UTC)
    runs = run(plan, lambda msg: console.print(f"[dim]{msg}[/dim]"))
    checks = goals(runs)
    if as_json:
        doc = {
            "started": started.isoformat(timespec="seconds"),
            "machine": machine(),
            "plan": asdict(plan),
            "runs": [asdict(r) | {"rps": round(r.rps, 1)} for r in runs],
            "goals": [{"goal": g, "measured": m, "pass": ok} for g, m, ok in checks],
        }
        print(json.dumps(doc, indent=2, default=str))
    else:
        info = machine()
        console.print(f"{started:%Y-%m-%d %H:%M} UTC, {info['cpus']} CPUs ({info['cpu']})")
        fixed = "REELOUT_ACCESS_LOG=false "
        fixed += "REELOUT_EMBEDDED_WORKER=false"
        extra = " ".join(f"{k}={v}" for k, v in plan.settings.items())
        console.print(f"reelout serve with {fixed} {extra}".rstrip())
        print_tables(console, runs, plan)
        print_goals(console, checks)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
