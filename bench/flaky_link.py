"""A 100 MB upload over a throttled, connection-dropping loopback link: legacy vs direct vs tus."""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import http.client
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    MB,
    Server,
    TusError,
    parse_size,
    send_request,
    start_reelout,
    tus_create,
    tus_head,
    tus_patch,
    work_dir,
)

TUS_JS_RETRY_DELAYS = (0.0, 1.0, 3.0, 5.0)  # tus-js-client's default retryDelays, in seconds
PIPE_CHUNK = 16 * 1024
SEND_CHUNK = 256 * 1024
GOAL_FACTOR = 1.1


# -- the link -------------------------------------------------------------------------------------


class TokenBucket:
    """Shared by every connection in one direction: the link's bandwidth (debt-based)."""

    def __init__(self, bytes_per_s: float, burst: int = PIPE_CHUNK) -> None:
        self.rate, self.burst = bytes_per_s, burst
        self.tokens = float(burst)
        self.stamp = time.monotonic()

    async def take(self, count: int) -> None:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        self.tokens -= count
        if self.tokens < 0:
            await asyncio.sleep(-self.tokens / self.rate)


@dataclass
class LinkStats:
    up: int = 0
    down: int = 0
    connections: int = 0
    drops: int = 0


Pair = tuple[asyncio.StreamWriter, asyncio.StreamWriter]


class FlakyProxy:
    """127.0.0.1 proxy to `upstream`: throttles both ways, aborts all connections every N s.

    Written here because tc/netem needs a network namespace and toxiproxy is no Python
    package; a token bucket and a timer that aborts every live connection are all it takes.
    """

    def __init__(self, upstream: int, mbit: float, drop_every: float) -> None:
        self.upstream, self.drop_every = upstream, drop_every
        rate = mbit * 1e6 / 8
        self.buckets = {"up": TokenBucket(rate), "down": TokenBucket(rate)}
        self.stats = LinkStats()
        self.port = 0
        self._live: set[Pair] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None

    def __enter__(self) -> FlakyProxy:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop and self._stop:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    async def _main(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        dropper = asyncio.create_task(self._dropper())
        self._ready.set()
        await self._stop.wait()
        dropper.cancel()
        self._drop_all()
        server.close()
        await asyncio.wait_for(asyncio.gather(*self._tasks, return_exceptions=True), 5)

    async def _dropper(self) -> None:
        while True:
            await asyncio.sleep(self.drop_every)
            if self._live:
                self.stats.drops += 1
            self._drop_all()

    def _drop_all(self) -> None:
        for client, upstream in list(self._live):
            client.transport.abort()
            upstream.transport.abort()
        self._live.clear()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream)
        except OSError:
            writer.transport.abort()
            return
        pair = (writer, up_writer)
        self._live.add(pair)
        self.stats.connections += 1
        await asyncio.gather(
            self._pipe(reader, up_writer, "up"),
            self._pipe(up_reader, writer, "down"),
            return_exceptions=True,
        )
        self._live.discard(pair)
        for w in pair:
            w.transport.abort()

    async def _pipe(
        self, src: asyncio.StreamReader, dst: asyncio.StreamWriter, direction: str
    ) -> None:
        bucket = self.buckets[direction]
        while data := await src.read(PIPE_CHUNK):
            await bucket.take(len(data))
            if dst.transport.is_closing():
                return
            dst.write(data)
            setattr(self.stats, direction, getattr(self.stats, direction) + len(data))
            await dst.drain()
        if dst.can_write_eof() and not dst.transport.is_closing():
            dst.write_eof()


# -- the three clients ------------------------------------------------------------------------------


class Retryable(Exception):
    """A failure worth retrying: no response, a dropped connection, 409, 423 or 5xx."""


class Fatal(Exception):
    """Any other 4xx: retrying would not help."""


def _classify(exc: Exception) -> Exception:
    if isinstance(exc, TusError):
        retry = exc.status in (409, 423) or exc.status >= 500
        return Retryable(str(exc)) if retry else Fatal(str(exc))
    if isinstance(exc, OSError | http.client.HTTPException):
        return Retryable(f"{type(exc).__name__}: {exc}")
    return exc


class Method(Protocol):
    name: str
    progress: int
    unbroken_bytes: int | None  # what must cross in one connection; None: it resumes
    video_uid: str | None

    def attempt(self, port: int) -> None: ...


def _chunks(data: bytes, start: int = 0) -> Iterator[memoryview]:
    view = memoryview(data)
    for at in range(start, len(data), SEND_CHUNK):
        yield view[at : at + SEND_CHUNK]


def _connect(port: int) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", port, timeout=60)


class WholeBodyPost:
    """POST the whole body to the order-stage route; every retry starts again from byte 0."""

    progress = 0

    def __init__(self, name: str, body: bytes, content_type: str, headers: dict[str, str]) -> None:
        self.name, self.body, self.content_type = name, body, content_type
        self.headers = headers
        self.unbroken_bytes: int | None = len(body)
        self.video_uid: str | None = None

    def attempt(self, port: int) -> None:
        hdrs = {
            **self.headers,
            "Content-Type": self.content_type,
            "Content-Length": str(len(self.body)),
            "X-Filename": "flaky.mp4",
        }
        conn = _connect(port)
        try:
            resp = send_request(
                conn, "POST", "/api/v1/orders/bench/inbound/videos", hdrs, _chunks(self.body)
            )
            reply = resp.read()
        finally:
            conn.close()
        if resp.status != 201:
            raise TusError(f"POST {self.name}", resp.status, reply)
        self.video_uid = json.loads(reply)["uid"]


def legacy_body(data: bytes) -> bytes:
    encoded = base64.b64encode(data)
    return b'{"filename": "flaky.mp4", "file_base64": "' + encoded + b'"}'


class TusResume:
    """tus like tus-js-client with chunkSize Infinity: one PATCH with all that remains; resume
    after a failure with HEAD then PATCH from the server's offset."""

    name = "tus"
    unbroken_bytes: int | None = None

    def __init__(self, data: bytes, headers: dict[str, str]) -> None:
        self.data, self.headers = data, headers
        self.path: str | None = None
        self.progress = 0
        self.video_uid: str | None = None

    def attempt(self, port: int) -> None:
        conn = _connect(port)
        try:
            if self.path is None:
                self.path = tus_create(conn, self.headers, len(self.data), "flaky.mp4")
            else:
                self.progress = tus_head(conn, self.headers, self.path)
            remaining = len(self.data) - self.progress
            if remaining:
                chunks = _chunks(self.data, self.progress)
                self.progress = tus_patch(
                    conn, self.headers, self.path, self.progress, chunks, remaining
                )
        finally:
            conn.close()


# -- the retry budget ---------------------------------------------------------------------------------


@dataclass
class Outcome:
    method: str
    ok: bool
    seconds: float
    attempts: int
    wire_up: int
    wire_down: int
    drops: int
    verified: bool
    unbroken_bytes: int | None = None
    error: str | None = None
    server_busy_before: float = 0.0


@dataclass
class Budget:
    """tus-js-client's rule: a retry after each delay; the count resets when a retry made progress."""

    delays: tuple[float, ...]
    max_seconds: float
    max_attempts: int = 100


def run_with_retries(method: Method, port: int, budget: Budget) -> tuple[bool, int, str | None]:
    start = time.monotonic()
    attempts, failures, last_progress = 0, 0, method.progress
    while attempts < budget.max_attempts:
        attempts += 1
        try:
            try:
                method.attempt(port)
            except Exception as exc:
                raise _classify(exc) from exc
            return True, attempts, None
        except Fatal as exc:
            return False, attempts, str(exc)
        except Retryable as exc:
            error = str(exc)
        failures = 1 if method.progress > last_progress else failures + 1
        last_progress = method.progress
        if failures > len(budget.delays) or time.monotonic() - start > budget.max_seconds:
            return False, attempts, f"gave up after {attempts} attempts: {error}"
        time.sleep(budget.delays[failures - 1])
    return False, attempts, "attempt cap reached"


def stored_sha256(server: Server, method: Method) -> str | None:
    """Ask the server (directly, not through the link) for the stored original's sha256."""
    uid = method.video_uid
    conn = server.connect(timeout=30)
    try:
        if uid is None and isinstance(method, TusResume) and method.path:
            conn.request("HEAD", method.path, headers={"Tus-Resumable": "1.0.0", **server.headers})
            resp = conn.getresponse()
            resp.read()
            uid = resp.headers.get("Reelout-Video-Id")
        if uid is None:
            return None
        conn.request("GET", f"/api/v1/videos/{uid}", headers=server.headers)
        resp = conn.getresponse()
        body = resp.read()
        return json.loads(body).get("original_sha256") if resp.status == 200 else None
    finally:
        conn.close()


def run_method(server: Server, method: Method, link: Link, budget: Budget, sha: str) -> Outcome:
    with FlakyProxy(server.port, link.mbit, link.drop_every) as proxy:
        start = time.perf_counter()
        ok, attempts, error = run_with_retries(method, proxy.port, budget)
        seconds = time.perf_counter() - start
        stats = proxy.stats
    verified = ok and stored_sha256(server, method) == sha
    if ok and not verified:
        error = "finished, but the stored sha256 does not match the source"
    return Outcome(
        method.name,
        ok and verified,
        seconds,
        attempts,
        stats.up,
        stats.down,
        stats.drops,
        verified,
        method.unbroken_bytes,
        error,
    )


# -- the run ----------------------------------------------------------------------------------------


@dataclass
class Link:
    size: int
    mbit: float
    drop_every: float

    @property
    def ideal_seconds(self) -> float:
        return self.size * 8 / (self.mbit * 1e6)


def wait_idle(server: Server, quiet: float = 1.0, limit: float = 15.0) -> float:
    """Wait until the server has answered OPTIONS (directly) within 50 ms for `quiet` seconds
    in a row, so one method's aftermath does not land on the next; returns the seconds until
    that quiet stretch began."""
    start = time.monotonic()
    quiet_since: float | None = None
    while time.monotonic() - start < limit:
        conn = server.connect(timeout=limit)
        sent = time.monotonic()
        try:
            conn.request("OPTIONS", "/files/")
            conn.getresponse().read()
        finally:
            conn.close()
        prompt = time.monotonic() - sent < 0.05
        quiet_since = (quiet_since or sent) if prompt else None
        if quiet_since is not None and time.monotonic() - quiet_since >= quiet:
            return quiet_since - start
        time.sleep(0.05)
    return time.monotonic() - start


def run(link: Link, say: Callable[[str], None]) -> list[Outcome]:
    data = os.urandom(link.size)
    sha = hashlib.sha256(data).hexdigest()
    scale = link.drop_every / 20.0
    budget = Budget(
        tuple(d * scale for d in TUS_JS_RETRY_DELAYS), max(60.0, 6 * link.ideal_seconds)
    )
    outcomes = []
    with work_dir("flaky-") as tmp:
        server = start_reelout(tmp / "reelout", REELOUT_LEGACY_MAX_BYTES=str(4 * link.size + MB))
        try:
            methods: list[Method] = [
                WholeBodyPost(
                    "legacy base64 JSON", legacy_body(data), "application/json", server.headers
                ),
                WholeBodyPost("direct binary", data, "video/mp4", server.headers),
                TusResume(data, server.headers),
            ]
            for method in methods:
                busy = wait_idle(server)
                say(f"{method.name} ... (server answered promptly after {busy:.1f} s)")
                outcomes.append(run_method(server, method, link, budget, sha))
                outcomes[-1].server_busy_before = busy
        finally:
            server.stop()
    return outcomes


def _mb(n: int) -> str:
    return f"{n / MB:,.1f} MB"


def _unbroken(o: Outcome, link: Link) -> str:
    if o.unbroken_bytes is None:
        return "no (resumes)"
    return f"{o.unbroken_bytes * 8 / (link.mbit * 1e6):.1f} s"


def print_report(console: Console, link: Link, outcomes: list[Outcome], budget_text: str) -> None:
    title = (
        f"{_mb(link.size)} at {link.mbit:g} Mbit/s, every connection dropped every "
        f"{link.drop_every:g} s; size/bandwidth = {link.ideal_seconds:.1f} s; {budget_text}"
    )
    table = Table(title=title, title_justify="left")
    for col in (
        "method",
        "success",
        "time",
        "x size/bw",
        "needs unbroken",
        "wire up",
        "wire down",
        "attempts",
        "drops hit",
    ):
        table.add_column(col, justify="left" if col == "method" else "right")
    for o in outcomes:
        table.add_row(
            o.method,
            "[green]yes[/green]" if o.ok else "[red]no[/red]",
            f"{o.seconds:.1f} s",
            f"{o.seconds / link.ideal_seconds:.2f}x" if o.ok else "-",
            _unbroken(o, link),
            _mb(o.wire_up),
            f"{o.wire_down / 1000:,.1f} kB",
            str(o.attempts),
            str(o.drops),
        )
    console.print(table)
    for o in outcomes:
        if o.error:
            console.print(f"  {o.method}: {o.error}")
        if o.server_busy_before > 0.2:
            console.print(
                f"  before {o.method}: the server took {o.server_busy_before:.1f} s to answer "
                "OPTIONS within 50 ms (aftermath of the previous method's dropped uploads)"
            )


def tus_goal(link: Link, outcomes: list[Outcome]) -> tuple[float, bool]:
    tus = next(o for o in outcomes if o.method == "tus")
    ratio = tus.seconds / link.ideal_seconds
    return ratio, tus.ok and ratio <= GOAL_FACTOR


def parse_args(argv: list[str] | None) -> tuple[Link, bool]:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size", default="100MB", help="upload size (default 100MB = 10^8 bytes)")
    ap.add_argument("--mbit", type=float, default=10.0, help="link bandwidth, Mbit/s (default 10)")
    ap.add_argument("--drop-every", type=float, default=20.0, help="seconds between drops (20)")
    ap.add_argument("--quick", action="store_true", help="20 MB at 40 Mbit/s, drop every 2 s")
    ap.add_argument("--json", action="store_true", help="print the results as JSON only")
    args = ap.parse_args(argv)
    if args.quick:
        args.size, args.mbit, args.drop_every = "20MB", 40.0, 2.0
    return Link(parse_size(args.size), args.mbit, args.drop_every), args.json


def main(argv: list[str] | None = None) -> int:
    link, as_json = parse_args(argv)
    console = Console(stderr=as_json, width=None if sys.stdout.isatty() else 120)
    outcomes = run(link, lambda msg: console.print(f"[dim]{msg}[/dim]"))
    ratio, ok = tus_goal(link, outcomes)
    delays = ", ".join(f"{d * link.drop_every / 20:g}" for d in TUS_JS_RETRY_DELAYS)
    budget_text = f"retry delays {delays} s (reset on progress)"
    if as_json:
        doc = {
            "link": {**asdict(link), "ideal_seconds": link.ideal_seconds},
            "outcomes": [asdict(o) for o in outcomes],
            "goal": {"tus_time_over_ideal": round(ratio, 3), "limit": GOAL_FACTOR, "pass": ok},
        }
        print(json.dumps(doc, indent=2))
        return 0
    print_report(console, link, outcomes, budget_text)
    verdict = "[green]PASS[/green]" if ok else "[red]FAIL[/red]"
    console.print(f"Goal: tus within {GOAL_FACTOR}x of size/bandwidth: {ratio:.3f}x {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
