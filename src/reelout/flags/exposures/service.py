"""The exposure log: which targeting key saw which variant of a flag on which UTC day.

A per-process `ExposureRecorder` takes what OFREP served (and what in-process SDKs report), skips
what it already recorded today (a bounded in-memory set), queues the rest and writes them in
batches every REELOUT_EXPOSURE_FLUSH_SECONDS with INSERT ... ON CONFLICT DO NOTHING, so the
processes and replicas sharing a database dedup there too. Also the queries that split metrics by
cohort: distinct users per variant per day, and the variants one user saw."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from reelout.clock import Clock
from reelout.config import Settings
from reelout.db.engine import Database
from reelout.flags.engine.evaluator import Resolution
from reelout.flags.exposures.models import FlagExposure
from reelout.telemetry import service as telemetry

log = logging.getLogger(__name__)

MAX_KEY_CHARS = 255  # the columns' width: longer flag keys, variants or targeting keys are skipped
INSERT_ROWS = 500  # rows per INSERT statement (6 parameters each: well under SQLite's limit)

Exposure = tuple[str, date, str, str, str]  # environment, day, flag, targeting key, variant
Seen = tuple[str, str, str]  # flag, targeting key, variant
Pending = tuple[Exposure, datetime]  # and when it was first seen


@dataclass(frozen=True)
class DayCounts:
    """One day of a flag: how many distinct targeting keys saw each variant."""

    day: date
    variants: dict[str, int]


def _fits(*values: str) -> bool:
    return all(0 < len(value) <= MAX_KEY_CHARS for value in values)


def utc_day(when: datetime) -> date:
    return when.astimezone(UTC).date()


class ExposureRecorder:
    """Dedups exposures per day in memory, queues new ones and flushes them to the database."""

    def __init__(self, db: Database, clock: Clock, settings: Settings) -> None:
        self.enabled = settings.exposure_log
        self.dropped = 0  # exposures dropped since start (the queue was full)
        self._db, self._clock, self._settings = db, clock, settings
        self._lock = threading.Lock()  # the day, the seen set, the queue, the drop counters
        self._flushing = threading.Lock()  # one flush at a time
        self._day: date | None = None
        # today's, as "environment\x1fflag\x1fkey\x1fvariant": strings are never scanned by the
        # garbage collector, where 200 000 tuples would lengthen every full collection
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._pending: list[Pending] = []
        self._dropped_since_flush = 0
        self._purged_on: date | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def pending(self) -> int:
        return len(self._pending)

    def served(
        self,
        environment: str,
        context: Mapping[str, Any],
        resolutions: Iterable[tuple[str, Resolution]],
    ) -> None:
        """What an OFREP answer served: every flag that had a variant, for the targeting key."""
        if not self.enabled:
            return
        targeting_key = context.get("targetingKey")
        if not isinstance(targeting_key, str):
            return
        seen = [
            (key, targeting_key, r.variant)
            for key, r in resolutions
            if r.variant is not None and r.error_code is None
        ]
        self.record(environment, seen)

    def record(self, environment: str, exposures: Iterable[Seen]) -> int:
        """Queue (flag, targeting key, variant)s not yet recorded today; returns how many the
        full queue (REELOUT_EXPOSURE_MAX_PENDING) dropped."""
        if not self.enabled:
            return 0
        now = self._clock.now()
        day = utc_day(now)
        dropped = 0
        with self._lock:
            self._start_day(day)
            for exposure in exposures:
                seen = "\x1f".join((environment, *exposure))
                if seen in self._seen or not _fits(*exposure):
                    continue
                if len(self._pending) >= self._settings.exposure_max_pending:
                    dropped += 1
                    continue
                self._remember(seen)
                flag, targeting_key, variant = exposure
                self._pending.append(((environment, day, flag, targeting_key, variant), now))
            self.dropped += dropped
            self._dropped_since_flush += dropped
        return dropped

    def _start_day(self, day: date) -> None:
        if day != self._day:
            self._day = day
            self._seen.clear()

    def _remember(self, key: str) -> None:
        """Keep at most REELOUT_EXPOSURE_DEDUP_MAX of today's, forgetting the oldest first."""
        limit = self._settings.exposure_dedup_max
        if limit == 0:
            return
        if len(self._seen) >= limit:
            self._seen.popitem(last=False)
        self._seen[key] = None

    def flush(self) -> int:
        """Write what is queued, and purge days past retention once a day; returns rows sent."""
        with self._flushing:
            with self._lock:
                batch, self._pending = self._pending, []
                dropped, self._dropped_since_flush = self._dropped_since_flush, 0
            if dropped:
                log.warning(
                    "exposure log dropped %d exposures: more than %d were waiting to be written "
                    "(REELOUT_EXPOSURE_MAX_PENDING)",
                    dropped,
                    self._settings.exposure_max_pending,
                )
            today = utc_day(self._clock.now())
            if not batch and self._purged_on == today:
                return 0
            try:
                self._write(batch, today)
            except SQLAlchemyError:
                log.exception("exposure log: could not write %d exposures; retrying", len(batch))
                self._requeue(batch)
                return 0
            return len(batch)

    def _write(self, batch: Sequence[Pending], today: date) -> None:
        with self._db.session() as session:
            store(session, batch)
        self._as_telemetry(batch)
        with self._db.session() as session:
            if self._purged_on != today:
                keep = self._settings.exposure_retention_days
                removed = purge(session, before=today - timedelta(days=keep))
                if removed:
                    log.info("exposure log: removed %d exposures older than %d days", removed, keep)
        self._purged_on = today

    def _as_telemetry(self, batch: Sequence[Pending]) -> None:
        """Each exposure as a telemetry `exposure` event too (its id derives from the row, so
        one a day, like the log), for the KPIs' arms and sample-ratio checks."""
        host = _Host(self._settings, self._db, self._clock)
        by_environment: dict[str, list[dict[str, Any]]] = {}
        for (environment, day, flag, key, variant), seen in batch:
            name = f"exposure:{environment}:{day}:{flag}:{key}:{variant}"
            by_environment.setdefault(environment, []).append({
                "event_id": telemetry.server_event_id(name), "type": "exposure",
                "viewer_id": key, "client_time": seen.isoformat(), "flag": flag,
                "variant": variant, "flags": {flag: variant},
            })  # fmt: skip
        step = self._settings.telemetry_max_batch_events
        for environment, events in by_environment.items():
            for start in range(0, len(events), step):
                try:
                    telemetry.ingest(host, environment, events[start : start + step], "server")
                except Exception:  # the exposure log is written: telemetry must not undo it
                    log.exception("exposure log: could not record exposures as telemetry")

    def _requeue(self, batch: list[Pending]) -> None:
        with self._lock:
            room = max(self._settings.exposure_max_pending - len(self._pending), 0)
            self._pending[:0] = batch[:room]
            lost = max(len(batch) - room, 0)
            self.dropped += lost
            self._dropped_since_flush += lost

    async def start(self) -> None:
        """Flush every REELOUT_EXPOSURE_FLUSH_SECONDS in the background (unless turned off)."""
        if self.enabled and self._task is None:
            self._task = asyncio.create_task(self._flush_periodically(), name="exposure-log")

    async def _flush_periodically(self) -> None:
        while True:
            await asyncio.sleep(self._settings.exposure_flush_seconds)
            await asyncio.to_thread(self.flush)

    async def stop(self) -> None:
        """Stop the background flush and write what is still queued."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self.enabled:
            await asyncio.to_thread(self.flush)


@dataclass(frozen=True)
class _Host:
    """What the telemetry service needs, from what the recorder holds."""

    settings: Settings
    db: Database
    clock: Clock


def recorder(app_state: Any) -> ExposureRecorder:
    """The app's recorder (`flags.routes.install` puts one on `app.state.exposures`)."""
    found: ExposureRecorder = app_state.exposures
    return found


def store(session: Session, batch: Sequence[Pending]) -> None:
    """Insert exposures; those already in the database (from any process) are left as they are."""
    if session.get_bind().dialect.name == "postgresql":
        _copy_postgres(session, batch)
        return
    rows = [
        {
            "environment": environment,
            "day": day,
            "flag_key": flag,
            "targeting_key": targeting_key,
            "variant": variant,
            "first_seen_at": at,
        }
        for (environment, day, flag, targeting_key, variant), at in batch
    ]
    statement = sqlite.insert(FlagExposure).on_conflict_do_nothing()  # executemany, one statement
    for start in range(0, len(rows), INSERT_ROWS):
        session.execute(statement, rows[start : start + INSERT_ROWS])


_STAGE = (
    "CREATE TEMP TABLE IF NOT EXISTS flag_exposures_stage "
    "(LIKE flag_exposures INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
)
_COPY = (
    "COPY flag_exposures_stage (environment, day, flag_key, targeting_key, variant, first_seen_at)"
    " FROM STDIN"
)
_MERGE = "INSERT INTO flag_exposures SELECT * FROM flag_exposures_stage ON CONFLICT DO NOTHING"


def _copy_postgres(session: Session, batch: Sequence[Pending]) -> None:
    """PostgreSQL: COPY into a per-connection staging table, then one INSERT ... SELECT that
    skips what is there (COPY itself cannot): a fifth of the CPU of row-wise inserts, which
    matters when every request brings new users."""
    driver = session.connection().connection.driver_connection
    with driver.cursor() as cursor:  # type: ignore[union-attr]
        cursor.execute(_STAGE)
        with cursor.copy(_COPY) as copy:
            for (environment, day, flag, targeting_key, variant), at in batch:
                copy.write_row((environment, day, flag, targeting_key, variant, at))
        cursor.execute(_MERGE)


def purge(session: Session, before: date) -> int:
    """Delete the exposures of days before `before`; returns how many."""
    result = session.execute(delete(FlagExposure).where(FlagExposure.day < before))
    return int(getattr(result, "rowcount", 0) or 0)


def variant_counts(
    session: Session, environment: str, flag: str, since: date, until: date
) -> list[DayCounts]:
    """Per day from `since` to `until` (inclusive), the distinct targeting keys of each variant."""
    # A (day, variant) holds each targeting key once (the primary key), so rows are users.
    query = (
        select(FlagExposure.day, FlagExposure.variant, func.count())
        .where(
            FlagExposure.environment == environment,
            FlagExposure.flag_key == flag,
            FlagExposure.day >= since,
            FlagExposure.day <= until,
        )
        .group_by(FlagExposure.day, FlagExposure.variant)
        .order_by(FlagExposure.day, FlagExposure.variant)
    )
    days: dict[date, dict[str, int]] = {}
    for day, variant, users in session.execute(query):
        days.setdefault(day, {})[variant] = users
    return [DayCounts(day, variants) for day, variants in days.items()]


def variant_of(
    session: Session, environment: str, flag: str, targeting_key: str, day: date
) -> list[str]:
    """The variants of `flag` that `targeting_key` saw on `day` (sorted; empty if none)."""
    query = (
        select(FlagExposure.variant)
        .where(
            FlagExposure.environment == environment,
            FlagExposure.day == day,
            FlagExposure.flag_key == flag,
            FlagExposure.targeting_key == targeting_key,
        )
        .order_by(FlagExposure.variant)
    )
    return list(session.scalars(query))
