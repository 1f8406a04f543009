"""tus upload throughput, CPU, RSS and HEAD latency: reelout next to @tus/server in one run."""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    GiB,
    MiB,
    Payload,
    Server,
    Usage,
    UsageSampler,
    parse_size,
    settle,
    start_peer,
    start_reelout,
    tus_create,
    tus_head,
    tus_upload,
    work_dir,
)

HEAD_INTERVAL = 0.02
RSS_GOAL = 64 * MiB
HEAD_P95_GOAL_MS = 100.0


@dataclass
class Result:
    """One phase on one server."""

    server: str
    phase: str
    bytes: int
    seconds: float
    usage: Usage
    client_cpu: float = 0.0
    last_patch: float | None = None
    errors: list[str] = field(default_factory=list)
    head_ms: list[float] = field(default_factory=list)
    head_errors: int = 0
    round_no: int = 0

    @property
    def mib_s(self) -> float:
        return self.bytes / MiB / self.seconds if self.seconds else 0.0

    @property
    def cpu_per_gib(self) -> float:
        return self.usage.cpu_seconds / (self.bytes / GiB) if self.bytes else 0.0

    @property
    def client_cpu_per_gib(self) -> float:
        return self.client_cpu / (self.bytes / GiB) if self.bytes else 0.0

    def head_quantile(self, q: int) -> float | None:
        if len(self.head_ms) < 2:
            return self.head_ms[0] if self.head_ms else None
        return statistics.quantiles(self.head_ms, n=100, method="inclusive")[q - 1]

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "server": self.server,
            "phase": self.phase,
            "bytes": self.bytes,
            "seconds": round(self.seconds, 3),
            "mib_per_s": round(self.mib_s, 1),
            "cpu_seconds": round(self.usage.cpu_seconds, 2),
            "cpu_seconds_per_gib": round(self.cpu_per_gib, 2),
            "client_cpu_seconds_per_gib": round(self.client_cpu_per_gib, 2),
            **{k: v for k, v in asdict(self.usage).items() if k != "cpu_seconds"},
            "rss_growth": self.usage.rss_growth,
            "last_patch_seconds": None if self.last_patch is None else round(self.last_patch, 3),
            "errors": self.errors,
            "round": self.round_no,
        }
        if self.phase == "concurrent":
            out["head"] = {
                "count": len(self.head_ms),
                "errors": self.head_errors,
                **{f"p{q}_ms": _round(self.head_quantile(q)) for q in (50, 95, 99)},
                "max_ms": _round(max(self.head_ms, default=None)),
            }
        return out


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


# -- upload shapes ------------------------------------------------------------------------------


def measure(server: Server, phase: str, size: int, work: Callable[[], list[str]]) -> Result:
    settle()
    with UsageSampler(server.pid) as sampler:
        cpu0, start = time.process_time(), time.perf_counter()
        errors = work()
        seconds, client_cpu = time.perf_counter() - start, time.process_time() - cpu0
    return Result(
        server.name, phase, size, seconds, sampler.usage, client_cpu=client_cpu, errors=errors
    )


def _ignore(_: object) -> None:
    return None


def _guard(fn: Callable[[], None]) -> list[str]:
    try:
        fn()
    except Exception as exc:
        return [f"{type(exc).__name__}: {exc}"]
    return []


def run_sequential(server: Server, payload: Payload, phase: str, size: int, chunk: int) -> Result:
    last: list[float] = []
    result = measure(
        server,
        phase,
        size,
        lambda: _guard(lambda: last.append(tus_upload(server, payload, size, chunk))),
    )
    result.last_patch = last[0] if last else None
    return result


# -- 32 concurrent uploads with a HEAD prober ---------------------------------------------------------


def probe_heads(port: int, headers: dict[str, str], path: str, stop: Any, out: Connection) -> None:
    """Child process: HEAD `path` every 20 ms until told to stop; send (t, ms, ok) samples back."""
    import http.client

    samples: list[tuple[float, float, bool]] = []
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    next_at = time.monotonic()
    while not stop.is_set():
        start = time.monotonic()
        try:
            tus_head(conn, headers, path)
            ok = True
        except Exception:
            ok = False
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        samples.append((start, (time.monotonic() - start) * 1000, ok))
        next_at += HEAD_INTERVAL
        time.sleep(max(0.0, next_at - time.monotonic()))
    out.send(samples)
    out.close()


def _start_prober(server: Server) -> tuple[Any, Any, Connection]:
    conn = server.connect()
    path = tus_create(conn, server.headers, MiB, "probe.mp4")
    conn.close()
    ctx = mp.get_context("spawn")
    stop = ctx.Event()
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=probe_heads, args=(server.port, server.headers, path, stop, child))
    proc.start()
    child.close()
    time.sleep(1.0)  # let it start and warm up
    return proc, stop, parent


def run_concurrent(server: Server, payload: Payload, uploads: int, each: int, chunk: int) -> Result:
    proc, stop, samples_in = _start_prober(server)
    window: list[float] = []

    def work() -> list[str]:
        window.append(time.monotonic())
        with ThreadPoolExecutor(uploads) as pool:
            futures = [
                pool.submit(_guard, lambda: _ignore(tus_upload(server, payload, each, chunk)))
                for _ in range(uploads)
            ]
            errors = [e for f in futures for e in f.result()]
        window.append(time.monotonic())
        return errors

    try:
        result = measure(server, "concurrent", uploads * each, work)
    finally:
        stop.set()
        samples = samples_in.recv()
        proc.join()
    during = [s for s in samples if window[0] <= s[0] <= window[1]]
    result.head_ms = [ms for _, ms, ok in during if ok]
    result.head_errors = sum(1 for *_, ok in during if not ok)
    return result


# -- the run ----------------------------------------------------------------------------------------


@dataclass
class Plan:
    size: int
    chunk: int
    uploads: int
    each: int
    repeat: int = 1


def disk_reference(folder: Path, payload: Payload, size: int, sync: bool) -> Result:
    """The physical limit: the bench itself writes `size` bytes to a file on the same disk."""
    path = folder / "disk-reference"

    def work() -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            for chunk in payload.chunks(0, size):
                os.write(fd, chunk)
            if sync:
                os.fdatasync(fd)
        finally:
            os.close(fd)

    name = "disk: write + fdatasync" if sync else "disk: write (page cache)"
    settle()
    start = time.perf_counter()
    work()
    result = Result(name, "disk", size, time.perf_counter() - start, Usage(0.0, 0, 0))
    path.unlink()
    return result


def run_round(
    servers: list[Server], plan: Plan, payload: Payload, say: Callable[[str], None], tmp: Path
) -> list[Result]:
    """One round; before each run every server's stored uploads are deleted (see purge).
    The caller alternates the servers' order between rounds, so neither always goes first."""

    def fresh() -> list[Server]:
        for server in servers:
            server.purge()
        return servers

    results = []
    for sync in (False, True):
        fresh()
        results.append(disk_reference(tmp, payload, plan.size, sync))
    for phase, chunk in (("single", plan.size), ("chunked", plan.chunk)):
        for server in fresh():
            say(f"{server.name}: {phase} {plan.size / MiB:.0f} MiB ...")
            results.append(run_sequential(server, payload, phase, plan.size, chunk))
            fresh()
    for server in fresh():
        say(f"{server.name}: {plan.uploads} concurrent x {plan.each / MiB:.0f} MiB ...")
        results.append(run_concurrent(server, payload, plan.uploads, plan.each, plan.chunk))
        fresh()
    return results


def run(plan: Plan, say: Callable[[str], None]) -> list[Result]:
    """Both servers run side by side; each phase runs on ours, then on the peer."""
    payload = Payload()
    results: list[Result] = []
    with work_dir("throughput-") as tmp:
        servers: list[Server] = []
        try:
            servers += [start_reelout(tmp / "reelout"), start_peer(tmp / "peer")]
            for server in servers:
                tus_upload(server, payload, 16 * MiB, 4 * MiB)  # warm-up: imports, DB, threads
            for round_no in range(plan.repeat):
                if plan.repeat > 1:
                    say(f"round {round_no + 1} of {plan.repeat}")
                order = servers if round_no % 2 == 0 else servers[::-1]
                for result in run_round(order, plan, payload, say, tmp):
                    result.round_no = round_no
                    results.append(result)
        finally:
            for server in servers:
                server.stop()
    return results


# -- reporting ------------------------------------------------------------------------------------


def _runs(results: list[Result], phase: str, ours: bool) -> list[Result]:
    return [r for r in results if r.phase == phase and (r.server == "reelout") == ours]


def _median(runs: list[Result]) -> Result:
    """The run with the median throughput (the lower one of the middle two)."""
    ordered = sorted(runs, key=lambda r: r.mib_s)
    return ordered[(len(ordered) - 1) // 2]


def _pair(results: list[Result], phase: str) -> tuple[Result, Result]:
    return _median(_runs(results, phase, True)), _median(_runs(results, phase, False))


def _round_ratios(results: list[Result], phase: str) -> list[float]:
    """reelout ÷ peer throughput within each round (both ran minutes apart, in turn)."""
    peer = {r.round_no: r.mib_s for r in _runs(results, phase, False)}
    return [r.mib_s / peer[r.round_no] for r in _runs(results, phase, True) if peer.get(r.round_no)]


def _median_ratio(results: list[Result], phase: str) -> float:
    ratios = _round_ratios(results, phase)
    return statistics.median(ratios) if ratios else 0.0


def _each_p95(results: list[Result], ours: bool) -> str:
    return " / ".join(_fmt(r.head_quantile(95)) for r in _runs(results, "concurrent", ours))


def _each_growth(results: list[Result], phase: str, ours: bool) -> str:
    return " / ".join(f"{r.usage.rss_growth / MiB:.0f}" for r in _runs(results, phase, ours))


def _each_run(results: list[Result], phase: str, ours: bool) -> str:
    return " / ".join(f"{r.mib_s:.0f}" for r in _runs(results, phase, ours))


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}x" if a is not None and b is not None and abs(b) >= 0.05 else "-"


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000


def _fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    return f"{value:,}{unit}" if isinstance(value, int) else f"{value:,.1f}{unit}"


def _rows(ours: Result, peer: Result) -> list[tuple[str, float | None, float | None, str]]:
    rows: list[tuple[str, float | None, float | None, str]] = [
        ("throughput", ours.mib_s, peer.mib_s, " MiB/s"),
        ("wall time", ours.seconds, peer.seconds, " s"),
        ("server CPU / GiB", ours.cpu_per_gib, peer.cpu_per_gib, " s"),
        ("bench client CPU / GiB", ours.client_cpu_per_gib, peer.client_cpu_per_gib, " s"),
        ("RSS baseline", ours.usage.rss_baseline / MiB, peer.usage.rss_baseline / MiB, " MiB"),
        ("RSS peak", ours.usage.rss_peak / MiB, peer.usage.rss_peak / MiB, " MiB"),
        ("RSS growth", ours.usage.rss_growth / MiB, peer.usage.rss_growth / MiB, " MiB"),
    ]
    if ours.phase == "chunked":
        rows.append(
            ("last PATCH (incl. finish)", _ms(ours.last_patch), _ms(peer.last_patch), " ms")
        )
    if ours.phase == "concurrent":
        for q in (50, 95, 99):
            rows.append((f"HEAD p{q}", ours.head_quantile(q), peer.head_quantile(q), " ms"))
        rows.append(
            ("HEAD max", max(ours.head_ms, default=None), max(peer.head_ms, default=None), " ms")
        )
        rows.append(("HEAD samples", len(ours.head_ms), len(peer.head_ms), ""))
    return rows


TITLES = {
    "single": "{size} in one PATCH",
    "chunked": "{size} in {chunk} PATCHes",
    "concurrent": "{uploads} concurrent uploads x {each} ({chunk} PATCHes)",
}


def _mib(n: int) -> str:
    return f"{n / GiB:g} GiB" if n >= GiB else f"{n / MiB:g} MiB"


def print_disk(console: Console, results: list[Result], plan: Plan) -> None:
    table = Table(title=f"Same-run reference: the bench writes {_mib(plan.size)} itself")
    table.title_justify = "left"
    table.add_column("")
    table.add_column("MiB/s, each run", justify="right")
    for name in ("disk: write (page cache)", "disk: write + fdatasync"):
        runs = [r for r in results if r.server == name]
        table.add_row(name, " / ".join(f"{r.mib_s:.0f}" for r in runs))
    console.print(table)


def print_tables(console: Console, results: list[Result], plan: Plan) -> None:
    print_disk(console, results, plan)
    labels = {"size": _mib(plan.size), "chunk": _mib(plan.chunk), "uploads": plan.uploads}
    labels["each"] = _mib(plan.each)
    for phase, title in TITLES.items():
        ours, peer = _pair(results, phase)
        table = Table(title=title.format(**labels), title_justify="left")
        for col in ("", "reelout", "@tus/server", "reelout / peer"):
            table.add_column(col, justify="right" if col else "left")
        for name, a, b, unit in _rows(ours, peer):
            table.add_row(name, _fmt(a, unit), _fmt(b, unit), _ratio(a, b))
        if plan.repeat > 1:
            each = [_each_run(results, phase, mine) for mine in (True, False)]
            ratios = " / ".join(f"{x:.2f}x" for x in _round_ratios(results, phase))
            table.add_row("MiB/s, each run", *each, ratios)
            growth = [_each_growth(results, phase, mine) for mine in (True, False)]
            table.add_row("RSS growth MiB, each run", *growth, "")
            if phase == "concurrent":
                p95 = [_each_p95(results, mine) for mine in (True, False)]
                table.add_row("HEAD p95 ms, each run", *p95, "")
        console.print(table)
        for r in (ours, peer):
            for err in r.errors + ([f"{r.head_errors} HEAD errors"] if r.head_errors else []):
                console.print(f"[red]{r.server} {phase}: {err}[/red]")


def goals(results: list[Result]) -> list[tuple[str, str, bool]]:
    """Throughput takes the median of the rounds' ratios; RSS and HEAD p95 the worst run."""
    out = []
    for phase in ("single", "chunked"):
        ratio = _median_ratio(results, phase)
        ok = ratio >= 1.0 and not any(r.errors for r in _runs(results, phase, True))
        out.append((f"{phase}: throughput >= 1.0x @tus/server", f"{ratio:.2f}x", ok))
        growth = max(r.usage.rss_growth for r in _runs(results, phase, True))
        out.append((f"{phase}: RSS growth < 64 MiB", f"{growth / MiB:.1f} MiB", growth < RSS_GOAL))
    runs = _runs(results, "concurrent", True)
    p95s = [r.head_quantile(95) for r in runs]
    worst = None if None in p95s else max(p for p in p95s if p is not None)
    clean = not any(r.errors or r.head_errors for r in runs)
    ok = worst is not None and worst < HEAD_P95_GOAL_MS and clean
    out.append(("concurrent: HEAD p95 < 100 ms", _fmt(worst, " ms"), ok))
    return out


def print_goals(console: Console, checks: list[tuple[str, str, bool]]) -> None:
    table = Table(title="Goals (reelout)", title_justify="left")
    for col in ("goal", "measured", "result"):
        table.add_column(col)
    for name, measured, ok in checks:
        table.add_row(name, measured, "[green]PASS[/green]" if ok else "[red]FAIL[/red]")
    console.print(table)


def parse_args(argv: list[str] | None) -> tuple[Plan, bool]:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size", default="1GiB", help="bytes per sequential upload (default 1GiB)")
    ap.add_argument("--chunk", default="5MiB", help="PATCH size of the chunked shapes")
    ap.add_argument("--uploads", type=int, default=32, help="concurrent uploads")
    ap.add_argument("--each", default="64MiB", help="bytes per concurrent upload")
    ap.add_argument("--quick", action="store_true", help="smoke run: 64 MiB and 32 x 10 MiB")
    ap.add_argument(
        "--repeat", type=int, default=4, help="rounds, alternating who goes first (default 4)"
    )
    ap.add_argument("--json", action="store_true", help="print the results as JSON only")
    args = ap.parse_args(argv)
    if args.quick:
        args.size, args.each = "64MiB", "10MiB"
    sizes = (parse_size(args.size), parse_size(args.chunk), args.uploads, parse_size(args.each))
    plan = Plan(*sizes, max(1, args.repeat))
    return plan, args.json


def main(argv: list[str] | None = None) -> int:
    plan, as_json = parse_args(argv)
    console = Console(stderr=as_json, width=None if sys.stdout.isatty() else 120)
    results = run(plan, lambda msg: console.print(f"[dim]{msg}[/dim]"))
    checks = goals(results)
    if as_json:
        doc = {
            "plan": asdict(plan),
            "results": [r.summary() for r in results],
            "goals": [{"goal": g, "measured": m, "pass": ok} for g, m, ok in checks],
        }
        print(json.dumps(doc, indent=2))
    else:
        print_tables(console, results, plan)
        print_goals(console, checks)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
