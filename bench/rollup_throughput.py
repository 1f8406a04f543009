"""Rollup throughput: the minute and hour rollups (rollups.roll_up, what the telemetry job runs)
folding N stored events, in events per CPU-second, next to storing the same events raw
(service.ingest, what POST /api/v1/telemetry/events calls once a batch is parsed), in process.

The events are kpi_query.py's visits (an app session, a view, some uploads and ratings; about
8 events a visit, 62 visits a minute), stored in batches of 1,000, then rolled up from the
cursor in the job's chunks of 5,000. CPU is this process's (SQLite runs in it; PostgreSQL's
backends are not counted, so wall time is shown too).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import machine, scratch_postgres, work_dir
from kpi_query import FLAG, PROFILES, _filled, profile_events, visits_per_minute
from reelout.clock import ManualClock
from reelout.config import Settings
from reelout.db.engine import Database
from reelout.db.migrate import upgrade
from reelout.runtime import Runtime
from reelout.telemetry import rollups, service

START = datetime(2026, 11, 30, tzinfo=UTC)
BATCH = 1_000


@dataclass
class Phase:
    database: str
    phase: str
    events: int
    wall_s: float
    cpu_s: float
    load_1m: float

    @property
    def per_cpu_s(self) -> float:
        return self.events / self.cpu_s if self.cpu_s else 0.0


def events(count: int, flags: int = 1) -> list[dict[str, Any]]:
    """`count` events of consecutive synthetic minutes, as apps send them, each carrying
    `flags` flags: the visits' own and `flags - 1` others the app evaluated (each viewer's
    variant of them fixed by the visit)."""
    visits, minute = visits_per_minute(), 0
    out: list[dict[str, Any]] = []
    while len(out) < count:
        for index, event in enumerate(profile_events(minute % PROFILES, visits)):
            body = _filled(event.body, minute, index)
            body["event_id"] = str(uuid.UUID(body["event_id"]))
            arm = body["flags"][FLAG]
            body["flags"] |= {f"other-{i}": f"{arm}-{i % 3}" for i in range(1, flags)}
            at = START + timedelta(minutes=minute, milliseconds=event.offset_ms)
            body["client_time"] = at.isoformat()
            out.append(body)
        minute += 1
    return out[:count]


def timed(database: str, phase: str, count: int, work: Callable[[], Any]) -> Phase:
    wall, cpu = time.perf_counter(), time.process_time()
    work()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return Phase(database, phase, count, wall, cpu, os.getloadavg()[0])


def run_one(url: str | None, folder: Path, batch: list[dict[str, Any]]) -> list[Phase]:
    name = "postgresql" if url else "sqlite"
    last = datetime.fromisoformat(batch[-1]["client_time"])
    clock = ManualClock(last + timedelta(minutes=1))
    settings = Settings(
        data_dir=folder / name,
        database_url=url,
        embedded_worker=False,
        telemetry_rollup_delay_seconds=0,
    )
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    rt = Runtime(settings, Database(settings.resolved_database_url), clock)
    upgrade(rt.db)

    def store() -> None:
        for start in range(0, len(batch), BATCH):
            outcome = service.ingest(rt, "production", batch[start : start + BATCH])
            assert not outcome.rejected, outcome.rejected[:3]

    def roll_up() -> None:
        assert rollups.roll_up(rt) == len(batch)

    phases = [
        timed(name, "store raw (service.ingest)", len(batch), store),
        timed(name, "roll up (rollups.roll_up)", len(batch), roll_up),
    ]
    rt.db.dispose()
    return phases


def run(
    count: int, database: str | None, say: Callable[[str], None], flags: int = 1
) -> list[Phase]:
    say(f"making {count:,} events, {flags} flag(s) each")
    batch = events(count, flags)
    phases: list[Phase] = []
    with work_dir("rollup-throughput-") as tmp:
        say("sqlite")
        phases += run_one(None, tmp, batch)
        if database:
            url = database
            if url.startswith("postgresql://"):
                url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
            with scratch_postgres(url, "bench_rollup") as scratch:
                say("postgresql")
                phases += run_one(scratch, tmp, batch)
    return phases


def print_table(console: Console, phases: list[Phase]) -> None:
    table = Table(title="events per CPU-second of this process (PostgreSQL's backends not counted)")
    for col in ("database", "phase", "events", "wall s", "CPU s", "events / CPU-s", "load 1m"):
        table.add_column(col, justify="left" if col in ("database", "phase") else "right")
    for p in phases:
        table.add_row(p.database, p.phase, f"{p.events:,}", f"{p.wall_s:.1f}", f"{p.cpu_s:.1f}",
                      f"{p.per_cpu_s:,.0f}", f"{p.load_1m:.2f}")  # fmt: skip
    console.print(table)
    for database in dict.fromkeys(p.database for p in phases):
        store, roll = (p for p in phases if p.database == database)
        console.print(
            f"{database}: rolling up costs {store.per_cpu_s / roll.per_cpu_s:.1f}x the CPU "
            "of storing the same events raw"
        )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--events", type=int, default=100_000, help="events (default 100,000)")
    ap.add_argument(
        "--database",
        help="also run on PostgreSQL: a server URL such as "
        "postgresql://postgres@127.0.0.1:5432/test (a scratch database is made and dropped)",
    )
    ap.add_argument(
        "--flags", type=int, default=1, help="flags each event carries (default 1, up to 64)"
    )
    ap.add_argument("--quick", action="store_true", help="smoke run: 10,000 events")
    ap.add_argument("--json", action="store_true", help="print the results as JSON only")
    args = ap.parse_args(argv)
    count = 10_000 if args.quick else args.events
    console = Console(stderr=args.json, width=None if sys.stdout.isatty() else 150)
    started = datetime.now(UTC)

    def say(msg: str) -> None:
        console.print(f"[dim]{msg}[/dim]")

    phases = run(count, args.database, say, args.flags)
    info = machine()
    if args.json:
        doc = {
            "started": started.isoformat(timespec="seconds"),
            "machine": info,
            "flags": args.flags,
            "phases": [asdict(p) | {"events_per_cpu_s": round(p.per_cpu_s)} for p in phases],
        }
        print(json.dumps(doc, indent=2))
    else:
        console.print(f"{started:%Y-%m-%d %H:%M} UTC, {info['cpus']} CPUs ({info['cpu']}), "
                      f"load {' '.join(f'{x:.2f}' for x in os.getloadavg())}, "
                      f"{args.flags} flag(s) an event")  # fmt: skip
        print_table(console, phases)
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        raise SystemExit(main())
