"""The KPI table over the rollups of 10 million events (kpis.kpi_table, the function under
GET /api/v1/kpis and `reelout kpi`): p50/p95/max for 1 h, 24 h and 7 d windows with a flag,
next to the same KPIs computed from the raw events of the window (the units folded by the pure
code, what a Reelout without rollups would have to do), with a check that both agree.

The data: 14 days of minutes, each minute a copy of one of PROFILES synthetic minutes (viewers
on three platforms and two app versions, half in each arm of one flag, each opening the app,
watching a video, some uploading or rating). A profile's rollup rows are made by the real code
(facts.units, facts.fold, sums.change, the rows rollups.py writes); SQL then copies them to
every minute of its profile (INSERT ... SELECT over the minutes), and writes the raw events the
same way, the unit ids made unique per minute.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import random
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select, text

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import Say, database_args, on_each_database, report
from reelout.clock import ManualClock
from reelout.config import Settings
from reelout.db.base import UTCDateTime
from reelout.db.engine import Database
from reelout.db.migrate import upgrade
from reelout.runtime import Runtime
from reelout.telemetry import kpis, rollups
from reelout.telemetry.facts import Seen, State, Unit, UnitKind, fold, units
from reelout.telemetry.metrics import METRICS, SEED_KPIS
from reelout.telemetry.models import TelemetryRollup
from reelout.telemetry.sums import Sums, change, contributions

GOAL_P95_MS = 100.0
ENVIRONMENT = "production"
FLAG = "use_new_player"
ARMS = ("off", "on")
PLATFORMS = ("ios", "android", "web")
APP_VERSIONS = ("2.3.0", "2.4.0")
PROFILES = 97  # distinct synthetic minutes (a prime, so no window lines up with the cycle)
DAYS = 14
TARGET_EVENTS = 10_000_000
WINDOWS = {"1h": timedelta(hours=1), "24h": timedelta(days=1), "7d": timedelta(days=7)}
END = datetime(2026, 12, 1, tzinfo=UTC)  # the data's last minute ends here
UNTIL = END - timedelta(minutes=37, seconds=30)  # the windows end here: ragged, like "now"
RAGGED = timedelta(hours=1)  # raw events are kept this much longer than the raw windows
M, E = "@M@", "@E@"  # placeholders: the minute's index, the event's uuid


# -- the synthetic minutes ------------------------------------------------------------------------


@dataclass
class Event:
    offset_ms: int
    body: dict[str, Any]


def _visit(rng: random.Random, tag: str, start: int, exposure: bool = False) -> list[Event]:
    """One viewer's visit: an app session, a view, sometimes an upload and a rating; the
    treatment arm ("on") is better on every KPI, by about what the seed hopes for. With
    `exposure`, the visit opens with the flag's `exposure` event (as OFREP's log writes it)."""
    on = rng.random() < 0.5
    common = {
        "viewer_id": f"viewer-{tag}-{M}",
        "session_id": f"session-{tag}-{M}",
        "platform": rng.choice(PLATFORMS),
        "app_version": rng.choice(APP_VERSIONS),
        "player": "media_kit",
        "video_id": f"video-{rng.randrange(300)}",
        "flags": {FLAG: ARMS[on]},
    }
    out: list[Event] = []

    def add(at: int, type_: str, **fields: Any) -> None:
        body = {"event_id": E, "type": type_, **common, "seq": len(out), **fields}
        out.append(Event(min(at, 59_999), body))

    if exposure:  # no random draw: the rest of the visit is the same with or without it
        add(start, "exposure", flag=FLAG, variant=ARMS[on])
    crashed = rng.random() < (0.008 if on else 0.025)
    add(start, "app_session", status="crashed" if crashed else "ok")
    view = {"view_id": f"view-{tag}-{M}"}
    add(start + 100, "play_request", autoplay=False, **view)
    roll = rng.random()
    if roll < (0.008 if on else 0.015):
        add(start + 900, "error", code="MEDIA_ERR", fatal=True, before_first_frame=True, **view)
    elif roll < 0.04:
        add(start + 1500, "view_end", reason="user_exit", **view)
    else:
        startup = int(rng.lognormvariate(math.log(1800 if on else 3300), 0.45))
        stalls = rng.random() < (0.07 if on else 0.15)
        watch = rng.randrange(20_000, 180_000)
        stall = rng.randrange(500, 6_000) if stalls else 0
        add(start + 100 + min(startup, 9_000), "playing", **view)
        t = start + 10_000
        for beat in (1, 2, 3):
            counters = {"watch_ms": watch * beat // 3, "rebuffer_ms": stall * beat // 3}
            counters |= {"rebuffer_count": int(stalls and beat >= 2), "startup_ms": startup}
            add(t + 4_000 * beat, "heartbeat", **counters, **view)
        if stalls:
            add(t + 5_000, "rebuffer_start", **view)
            add(t + 5_000 + stall // 10, "rebuffer_end", **view)
        add(t + 14_000, "view_end", reason="completed", watch_ms=watch, **view)
    if rng.random() < 0.3:
        upload = {"upload_id": f"upload-{tag}-{M}"}
        size = rng.randrange(5_000_000, 400_000_000)
        add(start + 2_000, "upload_started", bytes_total=size, method="tus", **upload)
        add(start + 8_000, "upload_progress", bytes_sent=size // 2, **upload)
        if rng.random() < (0.96 if on else 0.85):
            seconds = rng.gauss(80 if on else 180, 20) * size / 100e6
            add(start + 20_000, "upload_completed", bytes=size, duration_ms=int(1000 * seconds),
                method="tus", attempts=1, **upload)  # fmt: skip
        else:
            add(start + 20_000, "upload_failed", error_class="network", retryable=True, **upload)
    if rng.random() < 0.1:
        score = min(5, max(1, round(rng.gauss(4.3 if on else 3.5, 0.8))))
        add(start + 30_000, "rating", score=score)
    return out


def profile_events(profile: int, visits: int, exposures: bool = False) -> list[Event]:
    rng = random.Random(profile)
    events: list[Event] = []
    for visit in range(visits):
        events += _visit(rng, f"{profile}-{visit}", rng.randrange(0, 25_000), exposures)
    events.sort(key=lambda e: e.offset_ms)
    return events


def visits_per_minute(exposures: bool = False) -> int:
    """Visits per synthetic minute so that DAYS of minutes hold about TARGET_EVENTS events."""
    sample = sum(len(profile_events(p, 100, exposures)) for p in range(8)) / 800
    return round(TARGET_EVENTS / (DAYS * 1440) / sample)


def fold_units(events: list[tuple[str, Seen]]) -> dict[Unit, tuple[UnitKind, State]]:
    """The units of these events, each folded from nothing (what rollups._fold does)."""
    by_unit: dict[Unit, list[Seen]] = defaultdict(list)
    for _, seen in events:
        for unit in units(seen.body):
            by_unit[unit].append(seen)
    return {
        unit: (unit.kind, fold(unit.kind, {}, seen, unit.arm)) for unit, seen in by_unit.items()
    }


CohortKey = tuple[str, str, str, str, str]  # metric, flag, variant, platform, app_version


def profile_sums(events: list[Event], profile: int) -> dict[CohortKey, Sums]:
    """The rollup rows of one synthetic minute, by the rollups' own arithmetic."""
    seen = [
        (ENVIRONMENT, Seen(_filled(e.body, profile, i), e.offset_ms)) for i, e in enumerate(events)
    ]
    delta: dict[CohortKey, Sums] = defaultdict(Sums)
    for kind, state in fold_units(seen).values():
        for key, sums in change(kind, {}, state).items():
            assert key.minute == 0
            delta[(key.metric, key.flag, key.variant, key.platform, key.app_version)].add(sums)
    return delta


def total_sums(minute: dict[CohortKey, Sums]) -> dict[CohortKey, Sums]:
    """A minute's totals: its rows added up over platforms and app versions (what
    rollups._apply does per minute)."""
    out: dict[CohortKey, Sums] = defaultdict(Sums)
    for (metric, flag, variant, _, _), sums in minute.items():
        out[(metric, flag, variant, "", "")].add(sums)
    return out


def hour_sums(minutes: list[dict[CohortKey, Sums]], first: int) -> dict[CohortKey, Sums]:
    """An hour's rows: its 60 minutes' rows added up over platforms and app versions (what
    rollups._apply does per hour)."""
    out: dict[CohortKey, Sums] = defaultdict(Sums)
    for minute in range(first, first + 60):
        for (metric, flag, variant, _, _), sums in minutes[minute % PROFILES].items():
            out[(metric, flag, variant, "", "")].add(sums)
    return out


def day_sums(hours: list[dict[CohortKey, Sums]], first: int) -> dict[CohortKey, Sums]:
    """A UTC day's rows: its 24 hours' rows added up (what rollups._apply does per day)."""
    out: dict[CohortKey, Sums] = defaultdict(Sums)
    for hour in range(first, first + 24):
        for key, sums in hours[hour % PROFILES].items():
            out[key].add(sums)
    return out


def as_rows(profile: int, sums_by_key: dict[CohortKey, Sums]) -> list[dict[str, Any]]:
    rows = []
    for (metric, flag, variant, platform, app_version), sums in sorted(sums_by_key.items()):
        hist = orjson.dumps({str(k): v for k, v in sorted(sums.hist.items())}).decode()
        rows.append({
            "profile": profile, "metric": metric, "flag": flag, "variant": variant,
            "platform": platform, "app_version": app_version, "n": sums.n,
            "sum_x": sums.x, "sum_x2": sums.x2, "sum_d": sums.d, "sum_d2": sums.d2,
            "sum_xd": sums.xd, "hist": hist if sums.hist else None,
        })  # fmt: skip
    return rows


def _filled(body: dict[str, Any], minute: int, index: int) -> dict[str, Any]:
    raw = orjson.dumps(body).decode().replace(M, str(minute)).replace(E, _uuid(minute, index))
    return orjson.loads(raw)  # type: ignore[no-any-return]


def _uuid(minute: int, index: int) -> str:
    return f"{minute:08x}-0000-4000-8000-{index:012x}"


# -- writing the data with SQL --------------------------------------------------------------------


@dataclass
class Built:
    minutes: int
    events: int
    raw_events: int
    rollup_rows: int
    hour_rows: int
    raw_minutes: int
    visits_per_minute: int
    seconds_rollups: float
    seconds_raw: float
    total_rows: int  # the minutes' totals over platforms and app versions
    day_rows: int


def build(
    db: Database,
    minutes: int,
    raw_minutes: int,
    say: Callable[[str], None],
    exposures: bool = False,
) -> Built:
    """The data set; with `exposures`, each visit also has its `exposure` event."""
    visits = visits_per_minute(exposures)
    say(f"{visits} visits per minute; folding {PROFILES} synthetic minutes")
    per_profile = [profile_events(p, visits, exposures) for p in range(PROFILES)]
    minute_sums = [profile_sums(events, p) for p, events in enumerate(per_profile)]
    rows = [row for p, sums in enumerate(minute_sums) for row in as_rows(p, sums)]
    say(f"adding up the {PROFILES} distinct hours and days they make")
    hour_totals = [hour_sums(minute_sums, 60 * k) for k in range(PROFILES)]
    hours = [row for k, sums in enumerate(hour_totals) for row in as_rows(k, sums)]
    days = [row for k in range(PROFILES) for row in as_rows(k, day_sums(hour_totals, 24 * k))]
    totals = [row for p, sums in enumerate(minute_sums) for row in as_rows(p, total_sums(sums))]
    templates = [
        {"profile": p, "idx": i, "off": e.offset_ms, "type": e.body["type"],
         "viewer": e.body["viewer_id"], "body": orjson.dumps(e.body).decode()}
        for p, events in enumerate(per_profile) for i, e in enumerate(events)
    ]  # fmt: skip
    pg = db.engine.dialect.name == "postgresql"
    start = END - timedelta(minutes=minutes)
    with db.engine.begin() as conn:
        conn.execute(text(
            "CREATE TABLE bench_rows (profile INTEGER, metric TEXT, flag TEXT, variant TEXT, "
            "platform TEXT, app_version TEXT, n FLOAT, sum_x FLOAT, sum_x2 FLOAT, sum_d FLOAT, "
            "sum_d2 FLOAT, sum_xd FLOAT, hist TEXT)"))  # fmt: skip
        conn.execute(text(
            "CREATE TABLE bench_events (profile INTEGER, idx INTEGER, off INTEGER, type TEXT, "
            "viewer TEXT, body TEXT)"))  # fmt: skip
        conn.execute(text("CREATE TABLE bench_hours AS SELECT * FROM bench_rows WHERE 1 = 0"))
        conn.execute(text("CREATE TABLE bench_totals AS SELECT * FROM bench_rows WHERE 1 = 0"))
        conn.execute(text("CREATE TABLE bench_days AS SELECT * FROM bench_rows WHERE 1 = 0"))
        for table, values in (("bench_rows", rows), ("bench_hours", hours),
                              ("bench_totals", totals), ("bench_days", days)):  # fmt: skip
            conn.execute(text(f"INSERT INTO {table} VALUES (:profile, :metric, :flag, :variant, "
                              ":platform, :app_version, :n, :sum_x, :sum_x2, :sum_d, :sum_d2, "
                              ":sum_xd, :hist)"), values)  # fmt: skip
        conn.execute(text("INSERT INTO bench_events VALUES (:profile, :idx, :off, :type, "
                          ":viewer, :body)"), templates)  # fmt: skip
        conn.execute(text("CREATE INDEX bench_rows_p ON bench_rows (profile)"))
        conn.execute(text("CREATE INDEX bench_events_p ON bench_events (profile)"))
        conn.execute(text("CREATE INDEX bench_hours_p ON bench_hours (profile)"))
        conn.execute(text("CREATE INDEX bench_totals_p ON bench_totals (profile)"))
        conn.execute(text("CREATE INDEX bench_days_p ON bench_days (profile)"))
    events_in = {p: len(e) for p, e in enumerate(per_profile)}
    total = sum(events_in[m % PROFILES] for m in range(minutes))
    t0 = time.perf_counter()
    say(f"writing the rollup rows of {minutes:,} minutes ({total:,} events) with SQL")
    with db.engine.begin() as conn:
        conn.execute(text(_rollup_sql(pg)), {"minutes": minutes, "start": _epoch(start)})
        conn.execute(text(_rollup_sql(pg, "totals")), {"minutes": minutes,
                                                       "start": _epoch(start)})  # fmt: skip
        conn.execute(text(_rollup_sql(pg, "hours")), {"minutes": minutes // 60,
                                                         "start": _epoch(start)})  # fmt: skip
        conn.execute(text(_rollup_sql(pg, "days")), {"minutes": minutes // 1440,
                                                        "start": _epoch(start)})  # fmt: skip
    t1 = time.perf_counter()
    first_raw = max(0, minutes - raw_minutes - RAGGED // timedelta(minutes=1))
    raw = sum(events_in[m % PROFILES] for m in range(first_raw, minutes))
    say(f"writing {raw:,} raw events (the last {minutes - first_raw:,} minutes) with SQL")
    with db.engine.begin() as conn:
        conn.execute(
            text(_events_sql(pg)),
            {"first": first_raw, "minutes": minutes, "start": _epoch(start), "env": ENVIRONMENT},
        )
    t2 = time.perf_counter()
    with db.engine.begin() as conn:
        count = conn.execute(text("SELECT count(*) FROM telemetry_rollups")).scalar_one()
        in_hours = conn.execute(text("SELECT count(*) FROM telemetry_rollups_hourly")).scalar_one()
        totals_ = conn.execute(text("SELECT count(*) FROM telemetry_rollups_minutely")).scalar_one()
        in_days = conn.execute(text("SELECT count(*) FROM telemetry_rollups_daily")).scalar_one()
        conn.execute(text("DROP TABLE bench_rows"))
        conn.execute(text("DROP TABLE bench_hours"))
        conn.execute(text("DROP TABLE bench_totals"))
        conn.execute(text("DROP TABLE bench_days"))
        conn.execute(text("DROP TABLE bench_events"))
        conn.execute(text("ANALYZE"))
    return Built(minutes, total, raw, int(count), int(in_hours), minutes - first_raw, visits, t1 - t0,
                 t2 - t1, int(totals_), int(in_days))  # fmt: skip


def _epoch(at: datetime) -> int:
    return int(at.timestamp())


def _rollup_sql(pg: bool, rows: str = "minutes") -> str:
    """Every minute's rows (or its totals, or every hour's or UTC day's rows): its profile's
    rows at its time. `:minutes` counts the minutes (or hours, or days) from `:start` (unix
    seconds, a UTC midnight)."""
    step = {"hours": 3600, "days": 86_400}.get(rows, 60)
    if pg:
        minutes = "SELECT generate_series(0, :minutes - 1) AS i"
        at = f"to_timestamp(:start + m.i * {step})"
    else:
        minutes = (
            "WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s "
            "WHERE i < :minutes - 1) SELECT i FROM s"
        )
        at = f"strftime('%Y-%m-%d %H:%M:%S', :start + m.i * {step}, 'unixepoch') || '.000000'"
    table, column, source, cohort = {
        "hours": ("telemetry_rollups_hourly", "hour", "bench_hours", ""),
        "days": ("telemetry_rollups_daily", "day", "bench_days", ""),
        "totals": ("telemetry_rollups_minutely", "minute", "bench_totals", ""),
        "minutes": ("telemetry_rollups", "minute", "bench_rows", ", platform, app_version"),
    }[rows]
    return (
        f"INSERT INTO {table} (environment, metric, flag, {column}, variant{cohort}, "
        "n, sum_x, sum_x2, sum_d, sum_d2, sum_xd, hist) "
        f"SELECT '{ENVIRONMENT}', r.metric, r.flag, {at}, r.variant{cohort.replace(' ', ' r.')}, "
        "r.n, r.sum_x, r.sum_x2, r.sum_d, r.sum_d2, r.sum_xd, r.hist "
        f"FROM ({minutes}) AS m JOIN {source} AS r ON r.profile = m.i % {PROFILES}"
    )


def _events_sql(pg: bool) -> str:
    if pg:
        minutes = "SELECT generate_series(:first, :minutes - 1) AS i"
        at = "to_timestamp(:start + m.i * 60 + e.off / 1000.0)"
        uid = "(lpad(to_hex(m.i), 8, '0') || '-0000-4000-8000-' || lpad(to_hex(e.idx), 12, '0'))"
        column = f"{uid}::uuid"
        text_i = "m.i::text"
    else:
        minutes = (
            "WITH RECURSIVE s(i) AS (SELECT :first UNION ALL SELECT i + 1 FROM s "
            "WHERE i < :minutes - 1) SELECT i FROM s"
        )
        at = (
            "strftime('%Y-%m-%d %H:%M:%S', :start + m.i * 60 + e.off / 1000, 'unixepoch') "
            "|| printf('.%06d', (e.off % 1000) * 1000)"
        )
        uid = "printf('%08x-0000-4000-8000-%012x', m.i, e.idx)"
        column = "printf('%08x000040008000%012x', m.i, e.idx)"
        text_i = "CAST(m.i AS TEXT)"
    body = f"replace(replace(e.body, '{M}', {text_i}), '{E}', {uid})"
    viewer = f"replace(e.viewer, '{M}', {text_i})"
    return (
        "INSERT INTO telemetry_events (event_id, environment, type, source, viewer_id, "
        "event_time, received_at, body) "
        f"SELECT {column}, :env, e.type, 'client', {viewer}, {at}, {at}, {body} "
        f"FROM ({minutes}) AS m JOIN bench_events AS e ON e.profile = m.i % {PROFILES} "
        "ORDER BY m.i, e.off, e.idx"
    )


# -- the two ways to the KPI table ---------------------------------------------------------------


def from_rollups(rt: Runtime, window: timedelta) -> kpis.KpiTable:
    return kpis.kpi_table(rt, ENVIRONMENT, window, flag=FLAG, until=UNTIL)


def from_raw(rt: Runtime, window: timedelta) -> tuple[kpis.KpiTable, int]:
    """The same table from the raw events: read the events of the units that started in the
    window (here every unit's events fall within its minute, so: the events of the window's
    minutes, by the received_at index), fold every unit, add up what each unit puts in each
    metric per arm."""
    since = UNTIL - window
    first, end = rollups.spans(since, UNTIL)[0][1], rollups.spans(since, UNTIL)[-1][2]
    query = text(
        "SELECT event_time, body FROM telemetry_events WHERE environment = :env "
        "AND received_at >= :first AND received_at < :end"
    )
    column, dialect = UTCDateTime(), rt.db.engine.dialect
    events: list[tuple[str, Seen]] = []
    with rt.db.read() as session:
        bind = {
            "env": ENVIRONMENT,
            "first": column.process_bind_param(first, dialect),
            "end": column.process_bind_param(end, dialect),
        }
        for at, body in session.execute(query, bind):
            when = at if isinstance(at, datetime) else datetime.fromisoformat(at)
            when = when if when.tzinfo else when.replace(tzinfo=UTC)
            events.append((ENVIRONMENT, Seen(orjson.loads(body), int(when.timestamp() * 1000))))
    arms: dict[str, dict[str, Sums]] = defaultdict(lambda: defaultdict(Sums))
    lowest, highest = since.timestamp() * 1000, UNTIL.timestamp() * 1000
    for kind, state in fold_units(events).values():
        for key, sums in contributions(kind, state).items():
            if key.flag == FLAG and lowest <= key.minute < highest:
                arms[key.metric][key.variant].add(sums)
    rows = [kpis._row(METRICS[name], arms.get(name, {}), FLAG, None, None) for name in SEED_KPIS]
    return kpis.KpiTable(ENVIRONMENT, FLAG, since, UNTIL, None, rows), len(events)


def agree(a: kpis.KpiTable, b: kpis.KpiTable) -> tuple[bool, str]:
    """Same metrics, arms, unit counts, values and intervals (to 1e-9 relative)."""

    def close(x: Any, y: Any) -> bool:
        if x is None or y is None:
            return x is y
        return math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-12)

    for ra, rb in zip(a.rows, b.rows, strict=True):
        for arm_a, arm_b in ((ra.control, rb.control), (ra.treatment, rb.treatment)):
            if (arm_a is None) != (arm_b is None):
                return False, f"{ra.metric.name}: an arm missing"
            if arm_a and arm_b:
                fields = ("n", "value", "lower", "upper", "p50", "p90")
                for name in fields:
                    if not close(getattr(arm_a, name), getattr(arm_b, name)):
                        return False, f"{ra.metric.name} {arm_a.variant} {name}: " \
                            f"{getattr(arm_a, name)} != {getattr(arm_b, name)}"  # fmt: skip
        if (ra.difference is None) != (rb.difference is None) or (
            ra.difference and rb.difference
            and not all(close(x, y) for x, y in zip(ra.difference, rb.difference, strict=True))
        ):  # fmt: skip
            return False, f"{ra.metric.name}: difference {ra.difference} != {rb.difference}"
    return True, "same units, values and 95 % intervals for every KPI and arm"


# -- measuring ------------------------------------------------------------------------------------


@dataclass
class Timing:
    database: str
    window: str
    path: str
    runs: int
    p50_ms: float
    p95_ms: float
    max_ms: float
    rows_or_events: int
    minute_rows: int
    load_1m: float


def timed(fn: Callable[[], Any], runs: int) -> tuple[list[float], Any]:
    out, result = [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        result = fn()
        out.append(1000 * (time.perf_counter() - t0))
    return out, result


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]


def rows_in(rt: Runtime, window: timedelta) -> tuple[int, int]:
    """Rows of the seed KPIs for the flag in the window: those kpi_table reads (day rows for
    whole days, hour rows for whole hours, minutes' totals at the ends), and the minute rows
    alone."""
    names = ", ".join(repr(name) for name in SEED_KPIS)

    def count(session: Any, table: rollups.RollupTable, start: datetime, end: datetime) -> int:
        at = rollups._at(table)
        query = select(func.count()).select_from(table)
        query = query.where(table.flag == FLAG, at >= start, at < end, text(f"metric IN ({names})"))
        return int(session.scalar(query) or 0)

    with rt.db.read() as session:
        read = sum(count(session, *span) for span in rollups.spans(UNTIL - window, UNTIL))
        return read, count(session, TelemetryRollup, UNTIL - window, UNTIL)


@dataclass
class Plan:
    runs: int
    minutes: int
    raw_minutes: int
    raw_windows: tuple[str, ...]
    database: str | None


def run_one(plan: Plan, url: str | None, folder: Path, say: Say) -> dict[str, Any]:
    name = "postgresql" if url else "sqlite"
    settings = Settings(data_dir=folder / name, database_url=url, embedded_worker=False)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    rt = Runtime(settings, Database(settings.resolved_database_url), ManualClock(END))
    upgrade(rt.db)
    built = build(rt.db, plan.minutes, plan.raw_minutes, lambda m: say(f"{name}: {m}"))
    say(f"{name}: {built.rollup_rows:,} rollup rows in {built.seconds_rollups:.0f} s, "
        f"{built.raw_events:,} raw events in {built.seconds_raw:.0f} s")  # fmt: skip
    timings: list[Timing] = []
    checks: list[dict[str, Any]] = []
    for label, window in WINDOWS.items():
        if window > timedelta(minutes=plan.minutes):
            continue
        from_rollups(rt, window)  # warm: the first read opens the connection pool
        values, table = timed(lambda w=window: from_rollups(rt, w), plan.runs)  # type: ignore[misc]
        load = os.getloadavg()[0]
        timings.append(Timing(name, label, "rollups (kpi_table)", plan.runs,
                              statistics.median(values), p95(values), max(values),
                              *rows_in(rt, window), load))  # fmt: skip
        say(f"{name} {label}: rollups p95 {p95(values):.1f} ms")
        if label in plan.raw_windows and window <= timedelta(minutes=plan.raw_minutes):
            raw_values, (raw_table, count) = timed(lambda w=window: from_raw(rt, w), 1)  # type: ignore[misc]
            timings.append(Timing(name, label, "raw events (fold)", 1, raw_values[0],
                                  raw_values[0], raw_values[0], count, 0, os.getloadavg()[0]))  # fmt: skip
            ok, why = agree(table, raw_table)
            checks.append({"database": name, "window": label, "same": ok, "detail": why})
            say(f"{name} {label}: raw {raw_values[0]:.0f} ms, same numbers: {ok} ({why})")
    rt.db.dispose()
    return {"database": name, "built": vars(built), "timings": timings, "checks": checks}


# -- output ---------------------------------------------------------------------------------------


def print_tables(console: Console, results: list[dict[str, Any]]) -> None:
    for result in results:
        b = result["built"]
        console.print(
            f"{result['database']}: {b['minutes']:,} minutes, {b['events']:,} events "
            f"({b['visits_per_minute']} visits/min) → {b['rollup_rows']:,} rollup rows; "
            f"{b['hour_rows']:,} hour rows; {b['day_rows']:,} day rows; {b['raw_events']:,} raw events stored (the last "
            f"{b['raw_minutes'] / 60:g} h)"
        )
    table = Table(
        title=f"KPI table ({len(SEED_KPIS)} seed KPIs, flag {FLAG}, control vs treatment)"
    )
    for col in ("database", "window", "path", "runs", "p50 ms", "p95 ms", "max ms"):
        table.add_column(col, justify="left" if col in ("database", "window", "path") else "right")
    table.add_column("rows / events read", justify="right")
    table.add_column("minute rows in window", justify="right")
    table.add_column("raw ÷ rollups", justify="right")
    table.add_column("load 1m", justify="right")
    for result in results:
        rollup_p50 = {t.window: t.p50_ms for t in result["timings"] if t.path.startswith("rollups")}
        for t in result["timings"]:
            ratio = (
                "" if t.path.startswith("rollups") else f"{t.p50_ms / rollup_p50[t.window]:,.0f}x"
            )
            table.add_row(t.database, t.window, t.path, str(t.runs), f"{t.p50_ms:.1f}",
                          f"{t.p95_ms:.1f}", f"{t.max_ms:.1f}", f"{t.rows_or_events:,}",
                          f"{t.minute_rows:,}" if t.minute_rows else "", ratio,
                          f"{t.load_1m:.2f}")  # fmt: skip
    console.print(table)
    for result in results:
        for check in result["checks"]:
            mark = "SAME" if check["same"] else "DIFFERENT"
            console.print(
                f"check {check['database']} {check['window']}: {mark} — {check['detail']}"
            )
    worst = max((t.p95_ms for r in results for t in r["timings"] if t.path.startswith("rollups")),
                default=0.0)  # fmt: skip
    verdict = "PASS" if worst < GOAL_P95_MS else "FAIL"
    console.print(
        f"goal p95 < {GOAL_P95_MS:.0f} ms over rollups: worst p95 {worst:.1f} ms {verdict}"
    )


def parse_args(argv: list[str] | None) -> tuple[Plan, bool]:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=50, help="queries per window (default 50)")
    ap.add_argument("--raw-hours", type=float, default=24.0,
                    help="hours of raw events stored for the raw path (default 24; "
                         f"{DAYS * 24} stores all)")  # fmt: skip
    ap.add_argument(
        "--raw-windows",
        default="1h,24h",
        help="windows also computed from raw events (default 1h,24h)",
    )
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: 2 days of rollups, 1 h of raw events, 10 queries per window")  # fmt: skip
    database_args(ap)
    args = ap.parse_args(argv)
    minutes, raw = DAYS * 1440, round(args.raw_hours * 60)
    runs, windows = args.runs, tuple(args.raw_windows.split(","))
    if args.quick:
        minutes, raw, runs, windows = 2 * 1440, 60, 10, ("1h",)
    return Plan(runs, minutes, min(raw, minutes), windows, args.database), args.json


def main(argv: list[str] | None = None) -> int:
    plan, as_json = parse_args(argv)

    def run(say: Say) -> list[dict[str, Any]]:
        return on_each_database(plan.database, "bench_kpi", partial(run_one, plan), say)

    return report(plan, as_json, run, print_tables)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        raise SystemExit(main())
