"""The minute rollups: fold newly arrived events into their units and the units' numbers into
minute rows, in one transaction per chunk (so a crash replays a chunk, never half of one).

One job runs it (the jobs table makes sure no two workers do at once). Events are read in
arrival order from a cursor, `REELOUT_TELEMETRY_ROLLUP_DELAY_SECONDS` behind the clock so that
a writer still committing a lower id on PostgreSQL is not skipped.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import delete, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from reelout.context import Core
from reelout.telemetry.facts import UNIT_KINDS, Seen, State, UnitKind, fold, unit_ids
from reelout.telemetry.models import TelemetryCursor, TelemetryEvent, TelemetryRollup, TelemetryUnit
from reelout.telemetry.sums import RowKey, Sums, change

CURSOR = "rollups"
CHUNK_EVENTS = 5_000  # events folded per transaction
UNIT_QUERY = 400  # unit keys per IN (...) query
UnitKey = tuple[str, str, str]  # environment, kind, unit id


def roll_up(core: Core, max_chunks: int = 1_000) -> int:
    """Fold every event that has arrived (up to the delay) into the rollups; how many."""
    folded = 0
    for _ in range(max_chunks):
        with core.db.session() as session:
            count = _one_chunk(core, session)
        folded += count
        if count < CHUNK_EVENTS:
            break
    return folded


def _one_chunk(core: Core, session: Session) -> int:
    cursor = session.get(TelemetryCursor, CURSOR) or TelemetryCursor(name=CURSOR, last_id=0)
    horizon = core.clock.now() - timedelta(seconds=core.settings.telemetry_rollup_delay_seconds)
    rows = session.execute(
        select(TelemetryEvent.id, TelemetryEvent.environment, TelemetryEvent.event_time,
               TelemetryEvent.received_at, TelemetryEvent.body)
        .where(TelemetryEvent.id > cursor.last_id, TelemetryEvent.received_at <= horizon)
        .order_by(TelemetryEvent.id)
        .limit(CHUNK_EVENTS)
    ).all()  # fmt: skip
    if rows:
        _fold(session, [(env, _seen(at, body)) for _, env, at, _, body in rows], core.clock.now())
        cursor.last_id = rows[-1][0]
    cursor.watermark = horizon if len(rows) < CHUNK_EVENTS else rows[-1][3]
    session.merge(cursor)
    return len(rows)


def _seen(at: datetime, body: str) -> Seen:
    return Seen(orjson.loads(body), int(at.timestamp() * 1000))


def _fold(session: Session, events: Sequence[tuple[str, Seen]], now: datetime) -> None:
    by_unit: dict[UnitKey, list[Seen]] = defaultdict(list)
    for environment, seen in events:
        for kind, unit_id in unit_ids(seen.body).items():
            by_unit[(environment, kind, unit_id[:300])].append(seen)
    before = _states(session, list(by_unit))
    delta: dict[tuple[str, RowKey], Sums] = {}
    states: list[dict[str, Any]] = []
    for key, arrived in by_unit.items():
        environment, kind = key[0], _kind(key[1])
        old = before.get(key, {})
        new = fold(kind, old, arrived)
        for row, sums in change(kind, old, new).items():
            delta.setdefault((environment, row), Sums()).add(sums)
        states.append({"environment": environment, "kind": kind, "unit_id": key[2],
                       "state": orjson.dumps(new).decode(), "updated_at": now})  # fmt: skip
    if states:
        session.execute(_upsert(session, TelemetryUnit, ("state", "updated_at")), states)
    _apply(session, delta)


def _upsert(session: Session, table: Any, columns: Sequence[str]) -> Any:
    """INSERT ... ON CONFLICT (primary key) DO UPDATE SET `columns` (SQLite and PostgreSQL)."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = dialect.insert(table)
    keys = [column.name for column in table.__table__.primary_key.columns]
    return statement.on_conflict_do_update(
        index_elements=keys, set_={name: statement.excluded[name] for name in columns}
    )


def _kind(name: str) -> UnitKind:
    for kind in UNIT_KINDS:
        if kind == name:
            return kind
    raise ValueError(f"no unit kind {name!r}")


def _states(session: Session, keys: Sequence[UnitKey]) -> dict[UnitKey, State]:
    found: dict[UnitKey, State] = {}
    columns = tuple_(TelemetryUnit.environment, TelemetryUnit.kind, TelemetryUnit.unit_id)
    for start in range(0, len(keys), UNIT_QUERY):
        part = keys[start : start + UNIT_QUERY]
        query = select(
            TelemetryUnit.environment,
            TelemetryUnit.kind,
            TelemetryUnit.unit_id,
            TelemetryUnit.state,
        ).where(columns.in_(part))
        for environment, kind, unit_id, state in session.execute(query):
            found[(environment, kind, unit_id)] = orjson.loads(state)
    return found


def _apply(session: Session, delta: dict[tuple[str, RowKey], Sums]) -> None:
    """Add each change to its row: the rows read in one query, written in one upsert (the one
    rollup job is their only writer)."""
    if not delta:
        return
    current = _current(session, delta)
    rows = []
    for (environment, key), sums in sorted(delta.items()):
        total_ = current.get((environment, key)) or Sums()
        total_.add(sums)
        rows.append(_values(environment, key, total_))
    columns = ("n", "sum_x", "sum_x2", "sum_d", "sum_d2", "sum_xd", "hist")
    session.execute(_upsert(session, TelemetryRollup, columns), rows)


def _current(
    session: Session, delta: dict[tuple[str, RowKey], Sums]
) -> dict[tuple[str, RowKey], Sums]:
    environments = {environment for environment, _ in delta}
    minutes = {datetime.fromtimestamp(key.minute / 1000, UTC) for _, key in delta}
    found: dict[tuple[str, RowKey], Sums] = {}
    query = select(TelemetryRollup).where(
        TelemetryRollup.environment.in_(environments), TelemetryRollup.minute.in_(minutes)
    )
    for row in session.scalars(query):
        key = RowKey(int(row.minute.timestamp() * 1000), row.flag, row.variant, row.platform,
                     row.app_version, row.metric)  # fmt: skip
        if (row.environment, key) in delta:
            found[(row.environment, key)] = _sums(row)
    return found


def _ident(environment: str, key: RowKey) -> dict[str, Any]:
    return {
        "environment": environment,
        "metric": key.metric,
        "flag": key.flag,
        "minute": datetime.fromtimestamp(key.minute / 1000, UTC),
        "variant": key.variant,
        "platform": key.platform,
        "app_version": key.app_version,
    }


def _sums(row: TelemetryRollup) -> Sums:
    hist = {int(k): v for k, v in orjson.loads(row.hist).items()} if row.hist else {}
    return Sums(row.n, row.sum_x, row.sum_x2, row.sum_d, row.sum_d2, row.sum_xd, hist)


def _values(environment: str, key: RowKey, sums: Sums) -> dict[str, Any]:
    hist = orjson.dumps({str(k): v for k, v in sorted(sums.hist.items())}).decode()
    return {
        **_ident(environment, key),
        "n": sums.n, "sum_x": sums.x, "sum_x2": sums.x2, "sum_d": sums.d, "sum_d2": sums.d2,
        "sum_xd": sums.xd, "hist": hist if sums.hist else None,
    }  # fmt: skip


def watermark(core: Core) -> datetime | None:
    """Every event that arrived before this is in the rollups."""
    with core.db.read() as session:
        cursor = session.get(TelemetryCursor, CURSOR)
    return cursor.watermark if cursor else None


def window_rows(
    session: Session,
    environment: str,
    metric: str,
    flag: str,
    since: datetime,
    until: datetime,
) -> Iterable[tuple[str, Sums]]:
    """(variant, sums) of every minute row of a metric and flag ("" = everyone) in
    [since, until), over all platforms and app versions."""
    rows = session.scalars(_window(environment, metric, flag, since, until))
    for row in rows:
        yield row.variant, _sums(row)


def purge(core: Core) -> int:
    """Delete minute rows past REELOUT_TELEMETRY_ROLLUP_RETENTION_DAYS and units no event has
    touched within REELOUT_TELEMETRY_RAW_RETENTION_DAYS; how many rows went."""
    now, settings = core.clock.now(), core.settings
    old_rows = now - timedelta(days=settings.telemetry_rollup_retention_days)
    idle_units = now - timedelta(days=settings.telemetry_raw_retention_days)
    with core.db.session() as session:
        rows = session.execute(delete(TelemetryRollup).where(TelemetryRollup.minute < old_rows))
        units = session.execute(delete(TelemetryUnit).where(TelemetryUnit.updated_at < idle_units))
    return int(getattr(rows, "rowcount", 0)) + int(getattr(units, "rowcount", 0))


def minute_rows(
    session: Session, environment: str, metric: str, flag: str, since: datetime, until: datetime
) -> Iterable[tuple[datetime, str, Sums]]:
    """(minute, variant, sums) of a metric and flag in [since, until), for series."""
    rows = session.scalars(_window(environment, metric, flag, since, until))
    for row in rows:
        yield row.minute, row.variant, _sums(row)


def labelled_rows(
    session: Session, metric: str, since: datetime, until: datetime, environment: str | None
) -> Iterable[tuple[str, str, str, Sums]]:
    """(environment, flag, variant, sums) of every row of a metric in [since, until)."""
    query = select(TelemetryRollup).where(
        TelemetryRollup.metric == metric,
        TelemetryRollup.minute >= since,
        TelemetryRollup.minute < until,
    )
    if environment not in (None, "*"):
        query = query.where(TelemetryRollup.environment == environment)
    for row in session.scalars(query):
        yield row.environment, row.flag, row.variant, _sums(row)


def _window(environment: str, metric: str, flag: str, since: datetime, until: datetime) -> Any:
    return select(TelemetryRollup).where(
        TelemetryRollup.environment == environment,
        TelemetryRollup.metric == metric,
        TelemetryRollup.flag == flag,
        TelemetryRollup.minute >= since,
        TelemetryRollup.minute < until,
    )
