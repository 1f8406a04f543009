"""tus into S3-compatible storage next to a bare multipart upload of the same bytes with the
same client library (boto3) to the same server (moto), in one run; and whole-object PUT/GET
with boto3 next to obstore, the client library `reelout.objectstore` did not choose."""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    ROOT,
    S3_CREDENTIALS,
    GiB,
    MiB,
    Payload,
    Server,
    UsageSampler,
    machine,
    parse_size,
    scratch_postgres,
    settle,
    start_moto,
    start_reelout,
    tus_upload,
    work_dir,
)

GOAL = 0.8  # tus ÷ bare multipart throughput (issue 14)
BUCKET = "reelout-bench"
TUS_SINGLE, TUS_CHUNKED = "tus: one PATCH", "tus: chunked PATCHes"
BARE, MANAGED, BARE_GET = "bare multipart", "boto3 upload_fileobj", "bare GET"
UPLOAD_ORDER = (TUS_SINGLE, BARE, TUS_CHUNKED, MANAGED, BARE_GET)
CLIENT_ORDER = ("boto3 PUT", "obstore PUT", "boto3 GET", "obstore GET")


@dataclass
class Run:
    """One timed operation: wall time, and CPU of reelout, moto and the bench's own process."""

    name: str
    round_no: int
    bytes: int
    seconds: float
    reelout_cpu: float
    moto_cpu: float
    client_cpu: float
    reelout_rss_growth: int
    last_request: float | None = None
    load: float = 0.0

    @property
    def mib_s(self) -> float:
        return self.bytes / MiB / self.seconds

    def per_gib(self, cpu: float) -> float:
        return cpu / (self.bytes / GiB)

    @property
    def total_cpu(self) -> float:
        """reelout, moto and the bench's client together: what the 2 cores had to do."""
        return self.reelout_cpu + self.moto_cpu + self.client_cpu


@dataclass
class Plan:
    size: int
    chunk: int
    part_size: int
    rounds: int
    object_size: int
    database: str | None
    managed: bool
    clients: bool
    profile: Path | None = None


@dataclass
class Rig:
    """The servers and clients of one run."""

    reelout: Server
    moto: Server
    s3: Any  # a boto3 S3 client made by reelout.objectstore.make_client
    obstore: Any | None
    payload: Payload
    parts: list[bytes]


# -- the rig ------------------------------------------------------------------------------------


def s3_env(endpoint: str) -> dict[str, str]:
    """The standard AWS variables for moto (reelout.objectstore reads them)."""
    return {**S3_CREDENTIALS, "AWS_ENDPOINT_URL": endpoint}


def make_obstore(endpoint: str) -> Any | None:
    """obstore's S3 store on the same bucket, or None when obstore is not installed."""
    try:
        from obstore.store import S3Store
    except ImportError:
        return None
    return S3Store(
        BUCKET,
        endpoint=endpoint,
        access_key_id=S3_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        secret_access_key=S3_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        region=S3_CREDENTIALS["AWS_REGION"],
        client_options={"allow_http": True},
    )


def server_env(stack: ExitStack, endpoint: str, plan: Plan) -> dict[str, str]:
    """`reelout serve`'s settings: tus uploads in the bucket, and PostgreSQL if asked."""
    env = {
        **s3_env(endpoint),
        "REELOUT_STORAGE_URL": f"s3://{BUCKET}/site",
        "REELOUT_S3_PART_SIZE": str(plan.part_size),
        "REELOUT_TUS_MAX_SIZE": str(min(64 * GiB, 10_000 * plan.part_size)),
        "REELOUT_ACCESS_LOG": "false",
    }
    if plan.database:
        url = "postgresql+psycopg://" + plan.database.removeprefix("postgresql://")
        env["REELOUT_DATABASE_URL"] = stack.enter_context(scratch_postgres(url, "s3bench"))
    return env


def start_rig(stack: ExitStack, folder: Path, plan: Plan) -> Rig:
    """moto with a bucket, then reelout on it; the peer's parts are built here, off the clock."""
    moto = start_moto(folder)
    stack.callback(moto.stop)
    endpoint = f"http://127.0.0.1:{moto.port}"
    os.environ.update(s3_env(endpoint))  # the bench's own boto3 client, as the server's
    from reelout.objectstore import make_client

    s3 = make_client()
    s3.create_bucket(Bucket=BUCKET)
    reelout = start_reelout(folder / "reelout", **server_env(stack, endpoint, plan))
    stack.callback(reelout.stop)
    payload = Payload()
    parts = [
        b"".join(payload.chunks(start, min(plan.part_size, plan.size - start)))
        for start in range(0, plan.size, plan.part_size)
    ]
    obstore = make_obstore(endpoint) if plan.clients else None
    return Rig(reelout, moto, s3, obstore, payload, parts)


def empty_bucket(rig: Rig) -> None:
    """Delete every object and abort every multipart upload, so moto's memory stays flat."""
    s3 = rig.s3
    for page in s3.get_paginator("list_multipart_uploads").paginate(Bucket=BUCKET):
        for item in page.get("Uploads", []):
            s3.abort_multipart_upload(Bucket=BUCKET, Key=item["Key"], UploadId=item["UploadId"])
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
        if keys:
            s3.delete_objects(Bucket=BUCKET, Delete={"Objects": keys, "Quiet": True})
    rig.reelout.purge()


# -- measuring ----------------------------------------------------------------------------------


def measure(rig: Rig, name: str, size: int, work: Callable[[], Any]) -> Run:
    """Time `work` with both servers' CPU; `work` may return the seconds its last request took."""
    settle()
    with UsageSampler(rig.reelout.pid) as ours, UsageSampler(rig.moto.pid) as moto:
        cpu0, start = time.process_time(), time.perf_counter()
        got = work()
        seconds, client = time.perf_counter() - start, time.process_time() - cpu0
    return Run(
        name,
        0,
        size,
        seconds,
        ours.usage.cpu_seconds,
        moto.usage.cpu_seconds,
        client,
        ours.usage.rss_growth,
        got if isinstance(got, float) else None,
        os.getloadavg()[0],
    )


def bare_multipart(rig: Rig, key: str) -> float:
    """What "a bare multipart upload with the same client" is: create, the parts one after
    the other from memory, complete; returns the seconds the completion took."""
    s3 = rig.s3
    upload_id = s3.create_multipart_upload(Bucket=BUCKET, Key=key)["UploadId"]
    done = []
    for number, body in enumerate(rig.parts, start=1):
        reply = s3.upload_part(
            Bucket=BUCKET, Key=key, UploadId=upload_id, PartNumber=number, Body=body
        )
        done.append({"PartNumber": number, "ETag": reply["ETag"]})
    start = time.perf_counter()
    s3.complete_multipart_upload(
        Bucket=BUCKET, Key=key, UploadId=upload_id, MultipartUpload={"Parts": done}
    )
    return time.perf_counter() - start


def managed_upload(rig: Rig, key: str, part_size: int) -> Callable[[], None]:
    """boto3's TransferManager: parts of the same size, 10 at a time (its default)."""
    from boto3.s3.transfer import TransferConfig

    config = TransferConfig(multipart_threshold=part_size, multipart_chunksize=part_size)
    data = io.BytesIO(b"".join(rig.parts))  # built before the clock starts
    return lambda: rig.s3.upload_fileobj(data, BUCKET, key, Config=config)


def bare_get(rig: Rig, key: str) -> None:
    """Read the object back in 1 MiB blocks and drop them (what finishing a tus upload does
    today, into the local media folder)."""
    body = rig.s3.get_object(Bucket=BUCKET, Key=key)["Body"]
    for _ in body.iter_chunks(MiB):
        pass


def check_stored(rig: Rig, size: int) -> None:
    """Every upload shape ends as one complete object of `size` bytes in the bucket."""
    pages = rig.s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
    if not any(item["Size"] == size for page in pages for item in page.get("Contents", [])):
        raise RuntimeError(f"no object of {size} bytes in the bucket after the upload")


def upload_work(rig: Rig, plan: Plan, name: str, key: str) -> Callable[[], float | None]:
    works: dict[str, Callable[[], Any]] = {
        TUS_SINGLE: lambda: tus_upload(rig.reelout, rig.payload, plan.size, plan.size),
        TUS_CHUNKED: lambda: tus_upload(rig.reelout, rig.payload, plan.size, plan.chunk),
        BARE: lambda: bare_multipart(rig, key),
        BARE_GET: lambda: bare_get(rig, key),
    }
    if name == MANAGED:
        return managed_upload(rig, key, plan.part_size)
    return works[name]


def upload_round(rig: Rig, plan: Plan, round_no: int, say: Callable[[str], None]) -> list[Run]:
    """Every upload shape once; odd rounds in reverse order (a bare GET always follows its
    bare multipart upload, whose object it reads)."""
    names = [n for n in UPLOAD_ORDER if n != MANAGED or plan.managed]
    if plan.chunk >= plan.size:
        names.remove(TUS_CHUNKED)
    steps = [[n] for n in names if n not in (BARE, BARE_GET)] + [[BARE, BARE_GET]]
    if round_no % 2:
        steps.reverse()
    runs = []
    for name in (n for step in steps for n in step):
        key = f"bare/{round_no}"
        say(f"round {round_no + 1}: {name} ...")
        run = measure(rig, name, plan.size, upload_work(rig, plan, name, key))
        run.round_no = round_no
        runs.append(run)
        check_stored(rig, plan.size)
        if name != BARE:
            empty_bucket(rig)
    return runs


def client_work(rig: Rig, name: str, data: bytes, key: str) -> Callable[[], None]:
    import obstore

    s3, store = rig.s3, rig.obstore
    works: dict[str, Callable[[], Any]] = {
        "boto3 PUT": lambda: s3.put_object(Bucket=BUCKET, Key=key, Body=data),
        "boto3 GET": lambda: s3.get_object(Bucket=BUCKET, Key=key)["Body"].read(),
        "obstore PUT": lambda: obstore.put(store, key, data, use_multipart=False),
        "obstore GET": lambda: obstore.get(store, key).bytes(),
    }
    return works[name]


def client_round(rig: Rig, plan: Plan, round_no: int, say: Callable[[str], None]) -> list[Run]:
    """Whole-object PUT then GET with each library; who goes first alternates by round."""
    data = b"".join(rig.payload.chunks(0, plan.object_size))
    libs = ("boto3", "obstore") if round_no % 2 == 0 else ("obstore", "boto3")
    runs = []
    for lib in libs:
        key = f"whole/{lib}-{uuid.uuid4().hex}"
        for verb in ("PUT", "GET"):
            say(f"round {round_no + 1}: {lib} {verb} ...")
            run = measure(rig, f"{lib} {verb}", plan.object_size, client_work(rig, f"{lib} {verb}", data, key))  # fmt: skip
            run.round_no = round_no
            runs.append(run)
        empty_bucket(rig)
    return runs


def warm_up(rig: Rig, plan: Plan) -> None:
    """Imports, connections, the database and moto's first bucket calls, off the clock."""
    tus_upload(rig.reelout, rig.payload, 16 * MiB, 8 * MiB)
    small = Rig(rig.reelout, rig.moto, rig.s3, rig.obstore, rig.payload, rig.parts[:2])
    bare_multipart(small, "warm")
    if rig.obstore is not None:
        client_work(rig, "obstore PUT", b"x" * MiB, "warm-o")()
        client_work(rig, "obstore GET", b"", "warm-o")()
    empty_bucket(rig)


@contextmanager
def sampled(servers: list[Server], folder: Path) -> Iterator[None]:
    """py-spy sampling every thread of each server that is not idle, until the block ends;
    collapsed stacks go to `<folder>/<server>.txt` (flamegraph.pl or speedscope read them)."""
    spy = shutil.which("py-spy") or str(ROOT / ".venv/bin/py-spy")
    samplers = []
    for server in servers:
        out = folder / f"{server.name}.txt"
        cmd = [spy, "record", "--pid", str(server.pid), "--subprocesses", "--nonblocking"]
        cmd += ["--rate", "250", "--format", "raw", "-o", str(out)]
        samplers.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT))
    time.sleep(1.0)
    try:
        yield
    finally:
        for sampler in samplers:
            sampler.send_signal(signal.SIGINT)
            sampler.wait(30)


def profile(rig: Rig, plan: Plan, say: Callable[[str], None]) -> None:
    """One more tus upload in one PATCH and one bare multipart upload, each under py-spy."""
    assert plan.profile is not None
    for name in (TUS_SINGLE, BARE):
        folder = plan.profile / name.split(":")[0].replace(" ", "-")
        folder.mkdir(parents=True, exist_ok=True)
        say(f"profiling {name} -> {folder}")
        with sampled([rig.reelout, rig.moto], folder):
            upload_work(rig, plan, name, "profiled")()
        empty_bucket(rig)


def run(plan: Plan, say: Callable[[str], None]) -> list[Run]:
    runs: list[Run] = []
    with work_dir("s3-upload-") as folder, ExitStack() as stack:
        rig = start_rig(stack, folder, plan)
        if plan.clients and rig.obstore is None:
            say("obstore is not installed: pip install -r bench/requirements-peers.txt")
        warm_up(rig, plan)
        for round_no in range(plan.rounds):
            runs += upload_round(rig, plan, round_no, say)
            if rig.obstore is not None:
                runs += client_round(rig, plan, round_no, say)
        if plan.profile:
            profile(rig, plan, say)
    return runs


# -- reporting ----------------------------------------------------------------------------------


def runs_of(runs: list[Run], name: str) -> list[Run]:
    return [r for r in runs if r.name == name]


def median_run(runs: list[Run]) -> Run:
    """The run with the median throughput (the slower of the middle two)."""
    ordered = sorted(runs, key=lambda r: r.mib_s)
    return ordered[(len(ordered) - 1) // 2]


def round_ratios(runs: list[Run], name: str, peer: str) -> list[float]:
    """`name` ÷ `peer` throughput within each round."""
    theirs = {r.round_no: r.mib_s for r in runs_of(runs, peer)}
    return [r.mib_s / theirs[r.round_no] for r in runs_of(runs, name) if r.round_no in theirs]


def median_ratio(runs: list[Run], name: str, peer: str) -> float | None:
    ratios = round_ratios(runs, name, peer)
    return statistics.median(ratios) if ratios else None


def cpu_ratio(runs: list[Run], name: str, peer: str) -> float | None:
    """`peer` ÷ `name` in CPU-seconds of all three processes per byte, medians over the rounds:
    the throughput ratio a CPU-bound machine would give, little moved by other load."""
    mine, theirs = runs_of(runs, name), runs_of(runs, peer)
    if not mine or not theirs:
        return None
    per_byte = [statistics.median(r.total_cpu / r.bytes for r in rs) for rs in (mine, theirs)]
    return per_byte[1] / per_byte[0]


def summary(runs: list[Run], names: Iterator[str] | tuple[str, ...]) -> list[dict[str, Any]]:
    out = []
    for name in names:
        mine = runs_of(runs, name)
        if not mine:
            continue
        med = median_run(mine)
        out.append(
            {
                "name": name,
                "mib_per_s": round(med.mib_s, 1),
                "mib_per_s_each": [round(r.mib_s, 1) for r in mine],
                "reelout_cpu_s_per_gib": round(med.per_gib(med.reelout_cpu), 2),
                "moto_cpu_s_per_gib": round(med.per_gib(med.moto_cpu), 2),
                "client_cpu_s_per_gib": round(med.per_gib(med.client_cpu), 2),
                "total_cpu_s_per_gib": round(
                    statistics.median(r.per_gib(r.total_cpu) for r in mine), 2
                ),
                "reelout_rss_growth_mib": round(med.reelout_rss_growth / MiB, 1),
                "last_request_s": None if med.last_request is None else round(med.last_request, 2),
                "load_1m_each": [round(r.load, 2) for r in mine],
            }
        )
    return out


PAIRS = {
    "tus one PATCH / bare multipart": (TUS_SINGLE, BARE),
    "tus chunked / bare multipart": (TUS_CHUNKED, BARE),
    "upload_fileobj / bare multipart": (MANAGED, BARE),
    "obstore PUT / boto3 PUT": ("obstore PUT", "boto3 PUT"),
    "obstore GET / boto3 GET": ("obstore GET", "boto3 GET"),
}
BY_CPU = " (by CPU)"


def ratios(runs: list[Run]) -> dict[str, float | None]:
    """Throughput ratios (medians of the rounds'), and the tus ones by CPU per byte too."""
    out = {label: median_ratio(runs, *pair) for label, pair in PAIRS.items()}
    for label in list(PAIRS)[:2]:
        out[label + BY_CPU] = cpu_ratio(runs, *PAIRS[label])
    return {k: None if v is None else round(v, 3) for k, v in out.items()}


def _size(n: int) -> str:
    return f"{n / GiB:g} GiB" if n >= GiB else f"{n / MiB:g} MiB"


def print_section(console: Console, title: str, rows: list[dict[str, Any]]) -> None:
    table = Table(title=title, title_justify="left")
    heads = ("", "MiB/s (median)", "each round", "reelout CPU s/GiB", "moto CPU s/GiB",
             "bench CPU s/GiB", "all CPU s/GiB", "last request s", "load 1m")  # fmt: skip
    for head in heads:
        table.add_column(head, justify="right" if head else "left")
    for row in rows:
        last = "-" if row["last_request_s"] is None else f"{row['last_request_s']:.2f}"
        table.add_row(
            row["name"],
            f"{row['mib_per_s']:.1f}",
            " / ".join(f"{x:.0f}" for x in row["mib_per_s_each"]),
            f"{row['reelout_cpu_s_per_gib']:.2f}",
            f"{row['moto_cpu_s_per_gib']:.2f}",
            f"{row['client_cpu_s_per_gib']:.2f}",
            f"{row['total_cpu_s_per_gib']:.2f}",
            last,
            " / ".join(f"{x:.1f}" for x in row["load_1m_each"]),
        )
    console.print(table)


def print_ratios(console: Console, runs: list[Run], found: dict[str, float | None]) -> None:
    title = "Ratios: medians of the rounds' ratios; by CPU: all CPU per byte, peer ÷ tus"
    table = Table(title=title, title_justify="left")
    for head in ("", "ratio", "each round", "goal"):
        table.add_column(head)
    for label, value in found.items():
        if value is None:
            continue
        pair = PAIRS.get(label)
        each = " / ".join(f"{x:.2f}" for x in round_ratios(runs, *pair)) if pair else ""
        goal = ""
        if label.startswith("tus"):
            ok = "[green]PASS[/green]" if value >= GOAL else "[red]FAIL[/red]"
            goal = f">= {GOAL}x {ok}" if pair else f"(>= {GOAL}x {ok})"
        table.add_row(label, f"{value:.2f}x", each, goal)
    console.print(table)


def report(plan: Plan, runs: list[Run], started: datetime, loads: list[Any], as_json: bool) -> None:
    uploads, clients = summary(runs, UPLOAD_ORDER), summary(runs, CLIENT_ORDER)
    found, info = ratios(runs), machine()
    if as_json:
        doc = {"started": started.isoformat(timespec="seconds"), "machine": info,
               "load_before": loads[0], "load_after": loads[1], "plan": asdict(plan),
               "uploads": uploads, "clients": clients, "ratios": found,
               "runs": [asdict(r) for r in runs]}  # fmt: skip
        print(json.dumps(doc, indent=2))
        return
    console = Console(width=None if sys.stdout.isatty() else 180)
    console.print(f"{started:%Y-%m-%d %H:%M} UTC, {info['cpus']} CPUs ({info['cpu']}), load "
                  f"before {' '.join(f'{x:.2f}' for x in loads[0])}, after "
                  f"{' '.join(f'{x:.2f}' for x in loads[1])}")  # fmt: skip
    title = (f"{_size(plan.size)} into moto, parts of {_size(plan.part_size)}; chunked PATCHes "
             f"of {_size(plan.chunk)}; {plan.rounds} rounds on "
             f"{'PostgreSQL' if plan.database else 'SQLite'}")  # fmt: skip
    print_section(console, title, uploads)
    if clients:
        print_section(console, f"Whole objects of {_size(plan.object_size)}", clients)
    print_ratios(console, runs, found)


def parse_args(argv: list[str] | None) -> tuple[Plan, bool]:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size", default="256MiB", help="bytes per upload (default 256MiB)")
    ap.add_argument("--chunk", default="16MiB", help="PATCH size of the chunked tus shape "
                    "(default 16MiB; as large as --size to leave it out)")  # fmt: skip
    ap.add_argument("--part-size", default="16MiB", help="REELOUT_S3_PART_SIZE and the bare "
                    "upload's part size (default 16MiB)")  # fmt: skip
    ap.add_argument("--rounds", type=int, default=3, help="rounds; the median is shown")
    ap.add_argument("--object", default="64MiB", help="whole-object size of the client section")
    ap.add_argument("--no-managed", action="store_true", help="leave out upload_fileobj")
    ap.add_argument("--no-clients", action="store_true", help="leave out boto3 vs obstore")
    ap.add_argument("--database", help="run reelout on a scratch database of this PostgreSQL "
                    "server (postgresql://postgres@127.0.0.1:5432/test) instead of SQLite")  # fmt: skip
    ap.add_argument("--profile", type=Path, metavar="DIR", help="after the rounds, one tus "
                    "upload and one bare multipart upload under py-spy (reelout and moto) into DIR")  # fmt: skip
    ap.add_argument("--json", action="store_true", help="print the results as JSON only")
    args = ap.parse_args(argv)
    plan = Plan(
        parse_size(args.size),
        parse_size(args.chunk),
        parse_size(args.part_size),
        max(1, args.rounds),
        parse_size(args.object),
        args.database,
        not args.no_managed,
        not args.no_clients,
        args.profile,
    )
    return plan, args.json


def main(argv: list[str] | None = None) -> int:
    plan, as_json = parse_args(argv)
    console = Console(stderr=True)
    started, before = datetime.now(UTC), os.getloadavg()
    runs = run(plan, lambda msg: console.print(f"[dim]{msg}[/dim]"))
    report(plan, runs, started, [before, os.getloadavg()], as_json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
