"""Shared bench helpers: start the servers, sample their CPU and RSS, a lean tus client, and the
skeleton of a bench that runs on SQLite then on a scratch PostgreSQL and prints or dumps JSON."""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

import psutil
from rich.console import Console

MB = 1000 * 1000
MiB = 1024 * 1024
GiB = 1024 * MiB
BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
WORK_DIR = BENCH_DIR / ".work"
JS_DIR = BENCH_DIR / "js"
TOKEN = "rlo_admin_pQN1m2BRIIWbAXyyYF6N_ItbcjDW284crqAKx_5Dghw"  # strong enough to start with
TUS = {"Tus-Resumable": "1.0.0"}
BLOCK = MiB


def parse_size(text: str) -> int:
    """'1GiB', '64MiB', '100MB', '5M' (binary), or plain bytes."""
    units = {"gib": GiB, "mib": MiB, "kib": 1024, "gb": 1000 * MB, "mb": MB, "kb": 1000}
    units |= {"g": GiB, "m": MiB, "k": 1024}
    lowered = text.strip().lower()
    for suffix, factor in sorted(units.items(), key=lambda kv: -len(kv[0])):
        if lowered.endswith(suffix):
            return int(float(lowered[: -len(suffix)]) * factor)
    return int(lowered)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def work_dir(prefix: str) -> Iterator[Path]:
    """A scratch folder under bench/.work (same disk as the project), removed afterwards."""
    WORK_DIR.mkdir(exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=WORK_DIR))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


# -- servers ------------------------------------------------------------------------------------


@dataclass
class Server:
    """A server under test, running as a subprocess on loopback."""

    name: str
    proc: subprocess.Popen[bytes]
    port: int
    log: IO[bytes]
    headers: dict[str, str] = field(default_factory=dict)
    blob_dirs: list[Path] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def connect(self, timeout: float = 120.0) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def purge(self, min_bytes: int = MiB) -> None:
        """Delete the finished uploads' bytes under blob_dirs (never a database), freeing their
        page cache so that every run starts with the same free memory."""
        for path in (p for folder in self.blob_dirs for p in folder.rglob("*")):
            with contextlib.suppress(OSError):
                if path.is_file() and path.stat().st_size >= min_bytes:
                    path.unlink()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def _wait_up(server: Server, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"{server.name} exited early; see {server.log.name}")
        with contextlib.suppress(OSError, http.client.HTTPException):
            conn = server.connect(timeout=2)
            conn.request("OPTIONS", "/files/", headers=TUS)
            status = conn.getresponse().status
            conn.close()
            if status < 500:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{server.name} did not come up within {timeout:.0f} s")


def reelout_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        REELOUT_DATA_DIR=str(data_dir),
        REELOUT_ADMIN_TOKEN=TOKEN,
        REELOUT_EMBEDDED_WORKER="false",
        REELOUT_TUS_MAX_SIZE=str(64 * GiB),
    )
    env.update(extra)
    return env


def start_reelout(data_dir: Path, **extra_env: str) -> Server:
    """`reelout serve` with its own data folder; extra_env adds REELOUT_* settings."""
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = (data_dir.parent / f"reelout-{port}.log").open("wb")
    cmd = [str(ROOT / ".venv/bin/reelout"), "serve", "--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(
        cmd, env=reelout_env(data_dir, **extra_env), stdout=log, stderr=log, cwd=data_dir
    )
    auth = {"Authorization": f"Bearer {TOKEN}"}
    server = Server("reelout", proc, port, log, auth, [data_dir / "media"])
    _wait_up(server)
    return server


S3_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "reelout-bench",
    "AWS_SECRET_ACCESS_KEY": "reelout-bench-secret",
    "AWS_REGION": "us-east-1",
}


def start_moto(folder: Path) -> Server:
    """moto's standalone S3-compatible server (a dev dependency) on a free loopback port."""
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = (folder / f"moto-{port}.log").open("wb")
    cmd = [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)]
    proc = subprocess.Popen(cmd, stdout=log, stderr=log, cwd=folder)
    server = Server("moto", proc, port, log)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"moto_server exited early; see {log.name}")
        with contextlib.suppress(OSError, http.client.HTTPException):
            conn = server.connect(timeout=2)
            conn.request("GET", "/moto-api/")
            conn.getresponse().read()
            conn.close()
            return server
        time.sleep(0.1)
    server.stop()
    raise RuntimeError("moto_server did not answer within 30 s")


def ensure_node_modules() -> None:
    if not (JS_DIR / "node_modules/@tus/server").exists():
        subprocess.run(["npm", "install", "--no-audit", "--no-fund"], cwd=JS_DIR, check=True)


def start_peer(data_dir: Path) -> Server:
    """@tus/server with a FileStore (bench/js/tus_peer.mjs)."""
    ensure_node_modules()
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = (data_dir.parent / f"tus-peer-{port}.log").open("wb")
    cmd = ["node", str(JS_DIR / "tus_peer.mjs"), str(port), str(data_dir), str(64 * GiB)]
    proc = subprocess.Popen(cmd, stdout=log, stderr=log, cwd=JS_DIR)
    server = Server("@tus/server", proc, port, log, blob_dirs=[data_dir])
    _wait_up(server)
    return server


def settle() -> None:
    """Flush dirty pages left by the previous run so it does not slow the next one."""
    os.sync()
    time.sleep(1.0)


# -- resource usage -----------------------------------------------------------------------------


@dataclass
class Usage:
    """CPU seconds used and RSS (baseline before, peak during) of a server over one phase."""

    cpu_seconds: float
    rss_baseline: int
    rss_peak: int

    @property
    def rss_growth(self) -> int:
        return max(0, self.rss_peak - self.rss_baseline)


def _tree(proc: psutil.Process) -> list[psutil.Process]:
    with contextlib.suppress(psutil.Error):
        return [proc, *proc.children(recursive=True)]
    return [proc]


def _cpu(proc: psutil.Process) -> float:
    total = 0.0
    for p in _tree(proc):
        with contextlib.suppress(psutil.Error):
            t = p.cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
    return total


def _rss(proc: psutil.Process) -> int:
    total = 0
    for p in _tree(proc):
        with contextlib.suppress(psutil.Error):
            total += p.memory_info().rss
    return total


class UsageSampler:
    """Samples the server's RSS every 50 ms in a thread; CPU is read at start and stop."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self.proc = psutil.Process(pid)
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._cpu0 = 0.0
        self.baseline = 0
        self.peak = 0

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, _rss(self.proc))

    def __enter__(self) -> UsageSampler:
        self._cpu0 = _cpu(self.proc)
        self.baseline = self.peak = _rss(self.proc)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss(self.proc))
        self.usage = Usage(_cpu(self.proc) - self._cpu0, self.baseline, self.peak)


# -- a lean tus client ----------------------------------------------------------------------------
# Not tuspy: it reads each chunk into memory from a file stream; this client streams a repeated
# in-memory block through http.client, so the client costs little CPU next to the server.


class Payload:
    """Deterministic bytes of any size made by repeating one random block (no big buffers)."""

    def __init__(self, block: bytes | None = None) -> None:
        self.block = block or os.urandom(BLOCK)

    def chunks(self, start: int, count: int) -> Iterator[memoryview]:
        view = memoryview(self.block)
        size = len(self.block)
        pos, end = start, start + count
        while pos < end:
            at = pos % size
            step = min(size - at, end - pos)
            yield view[at : at + step]
            pos += step


class TusError(RuntimeError):
    """A tus request got an unexpected status."""

    def __init__(self, what: str, status: int, body: bytes) -> None:
        super().__init__(f"{what}: HTTP {status} {body[:300]!r}")
        self.status = status


def _path(location: str) -> str:
    return urlsplit(location).path


def tus_create(
    conn: http.client.HTTPConnection, headers: dict[str, str], length: int, name: str = "bench.mp4"
) -> str:
    """POST /files/ → the upload's path."""
    import base64

    meta = "filename " + base64.b64encode(name.encode()).decode()
    hdrs = {**TUS, **headers, "Upload-Length": str(length), "Upload-Metadata": meta}
    conn.request("POST", "/files/", headers=hdrs)
    resp = conn.getresponse()
    body = resp.read()
    if resp.status != 201:
        raise TusError("POST /files/", resp.status, body)
    return _path(resp.headers["Location"])


def tus_head(conn: http.client.HTTPConnection, headers: dict[str, str], path: str) -> int:
    conn.request("HEAD", path, headers={**TUS, **headers})
    resp = conn.getresponse()
    body = resp.read()
    if resp.status not in (200, 204):
        raise TusError(f"HEAD {path}", resp.status, body)
    return int(resp.headers["Upload-Offset"])


def send_request(
    conn: http.client.HTTPConnection,
    method: str,
    path: str,
    headers: dict[str, str],
    body: Iterator[memoryview | bytes],
) -> http.client.HTTPResponse:
    """Stream `body` (Content-Length must be in headers) and return the response."""
    conn.putrequest(method, path, skip_accept_encoding=True)
    for key, value in headers.items():
        conn.putheader(key, value)
    conn.endheaders()
    for chunk in body:
        conn.send(chunk)
    return conn.getresponse()


def tus_patch(
    conn: http.client.HTTPConnection,
    headers: dict[str, str],
    path: str,
    offset: int,
    body: Iterator[memoryview | bytes],
    count: int,
) -> int:
    """PATCH `count` bytes at `offset`; returns the new offset."""
    hdrs = {
        **TUS,
        **headers,
        "Upload-Offset": str(offset),
        "Content-Type": "application/offset+octet-stream",
        "Content-Length": str(count),
    }
    resp = send_request(conn, "PATCH", path, hdrs, body)
    data = resp.read()
    if resp.status != 204:
        raise TusError(f"PATCH {path} @ {offset}", resp.status, data)
    return int(resp.headers["Upload-Offset"])


def tus_upload(server: Server, payload: Payload, size: int, chunk: int) -> float:
    """Create one upload and send it in PATCHes of `chunk` bytes (one PATCH if chunk >= size);
    returns the seconds the last PATCH took (it includes the server's finishing work)."""
    conn = server.connect(timeout=600)
    try:
        path = tus_create(conn, server.headers, size)
        offset, last = 0, 0.0
        while offset < size:
            count = min(chunk, size - offset)
            start = time.perf_counter()
            got = tus_patch(
                conn, server.headers, path, offset, payload.chunks(offset, count), count
            )
            last = time.perf_counter() - start
            if got != offset + count:
                raise RuntimeError(f"PATCH ended at offset {got}, expected {offset + count}")
            offset = got
        return last
    finally:
        conn.close()


@contextlib.contextmanager
def scratch_postgres(url: str, prefix: str) -> Iterator[str]:
    """A new database `<prefix>_<hex>` on the server of `url` for one run, dropped afterwards."""
    import psycopg

    name = f"{prefix}_{secrets.token_hex(4)}"
    admin_url = url.replace("+psycopg", "")
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield url.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# -- a bench on SQLite, then PostgreSQL ---------------------------------------------------------

Say = Callable[[str], None]
RunOne = Callable[[str | None, Path, Say], dict[str, Any]]  # (database URL or None, folder, say)


def machine() -> dict[str, Any]:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return {"cpus": os.cpu_count(), "cpu": model, "python": platform.python_version()}


def database_args(ap: argparse.ArgumentParser) -> None:
    """--database (also on PostgreSQL) and --json, as the database benches take them."""
    ap.add_argument(
        "--database",
        help="also run on PostgreSQL: a server URL such as "
        "postgresql://postgres@127.0.0.1:5432/test (a scratch database is made and dropped)",
    )
    ap.add_argument("--json", action="store_true", help="print the results as JSON only")


def on_each_database(
    database: str | None, prefix: str, run_one: RunOne, say: Say
) -> list[dict[str, Any]]:
    """`run_one` on SQLite in a work folder, then (with `database`) on a scratch PostgreSQL
    database of that server."""
    results = []
    with work_dir(f"{prefix.replace('_', '-')}-") as tmp:
        results.append(run_one(None, tmp, say))
        if database:
            url = database
            if url.startswith("postgresql://"):
                url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
            with scratch_postgres(url, prefix) as scratch:
                results.append(run_one(scratch, tmp, say))
    return results


def report(
    config: Any,
    as_json: bool,
    run: Callable[[Say], list[dict[str, Any]]],
    print_tables: Callable[[Console, list[dict[str, Any]]], None],
) -> int:
    """A database bench's main: `run` (saying its progress), then its results as JSON (each
    result's `timings` dataclasses as dicts, with `config`'s fields, the machine and the load
    before and after) or as the header line and `print_tables`."""
    console = Console(stderr=as_json, width=None if sys.stdout.isatty() else 170)
    started, load_before = datetime.now(UTC), os.getloadavg()
    results = run(lambda msg: console.print(f"[dim]{msg}[/dim]"))
    info = machine()
    if as_json:
        doc = {
            "started": started.isoformat(timespec="seconds"),
            "machine": info,
            "load_before": load_before,
            "load_after": os.getloadavg(),
            "config": vars(config),
            "results": [r | {"timings": [vars(t) for t in r["timings"]]} for r in results],
        }
        print(json.dumps(doc, indent=2, default=str))
    else:
        console.print(f"{started:%Y-%m-%d %H:%M} UTC, {info['cpus']} CPUs ({info['cpu']}), load "
                      f"before {' '.join(f'{x:.2f}' for x in load_before)}, after "
                      f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")  # fmt: skip
        print_tables(console, results)
    return 0
