"""The minute rollups: fold newly arrived events into their units and the units' numbers into
minute rows (and their totals per minute, hour and UTC day), and note when the apps' own events
last arrived (per environment and flag), in one transaction per chunk (so a crash replays a
chunk, never half of one).

One job runs it (the jobs table makes sure no two workers do at once). Events are read in
arrival order from a cursor, `REELOUT_TELEMETRY_ROLLUP_DELAY_SECONDS` behind the clock so that
a writer still committing a lower id on PostgreSQL is not skipped.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import String, and_, cast, delete, func, or_, select, true
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from reelout.context import Core
from reelout.telemetry.facts import UNIT_KINDS, Arm, Seen, State, UnitKind, fold, units
from reelout.telemetry.models import (
    TelemetryArrival,
    TelemetryCursor,
    TelemetryEvent,
    TelemetryRollup,
    TelemetryRollupDay,
    TelemetryRollupHour,
    TelemetryRollupMinute,
    TelemetryUnit,
)
from reelout.telemetry.sums import RowKey, Sums, change

CURSOR = "rollups"
CHUNK_EVENTS = 5_000  # events folded per transaction
UNIT_QUERY = 400  # unit keys per IN (...) query
UnitKey = tuple[str, str, str]  # environment, kind, unit id
RollupTable = (
    type[TelemetryRollup]
    | type[TelemetryRollupMinute]
    | type[TelemetryRollupHour]
    | type[TelemetryRollupDay]
)
HOUR_MS, DAY_MS = 3_600_000, 86_400_000
MINUTE, HOUR, DAY = timedelta(minutes=1), timedelta(hours=1), timedelta(days=1)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# The ladder a window is read from, coarsest first: whole days, then whole hours (the ragged
# minutes come from the minutes' totals).
LADDER: tuple[tuple[RollupTable, timedelta], ...] = (
    (TelemetryRollupDay, DAY),
    (TelemetryRollupHour, HOUR),
)


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
               TelemetryEvent.received_at, TelemetryEvent.body, TelemetryEvent.source)
        .where(TelemetryEvent.id > cursor.last_id, TelemetryEvent.received_at <= horizon)
        .order_by(TelemetryEvent.id)
        .limit(CHUNK_EVENTS)
    ).all()  # fmt: skip
    if rows:
        events = [(env, _seen(at, body), arrived, source)
                  for _, env, at, arrived, body, source in rows]  # fmt: skip
        _fold(session, [(env, seen) for env, seen, _, _ in events], core.clock.now())
        by_apps = ((env, seen.body, arrived) for env, seen, arrived, source in events
                   if source == "client")  # fmt: skip
        note_arrivals(session, client_arrivals(by_apps))
        cursor.last_id = rows[-1][0]
    cursor.watermark = horizon if len(rows) < CHUNK_EVENTS else rows[-1][3]
    session.merge(cursor)
    return len(rows)


ArrivalKey = tuple[str, str]  # environment, flag ("" = any)


def client_arrivals(
    events: Iterable[tuple[str, Mapping[str, Any], datetime]],
) -> dict[ArrivalKey, datetime]:
    """The newest arrival of the client events (environment, body, received_at) per environment
    and flag they carry (in `flags`, or an exposure's `flag`), and per environment alone
    (flag "")."""
    newest: dict[ArrivalKey, datetime] = {}
    for environment, body, received_at in events:
        flags = [*(body.get("flags") or {})]
        if body.get("type") == "exposure":
            flags.append(body["flag"])
        for key in ((environment, ""), *((environment, flag[:255]) for flag in flags)):
            held = newest.get(key)
            if held is None or received_at > held:
                newest[key] = received_at
    return newest


def note_arrivals(session: Session, newest: Mapping[ArrivalKey, datetime]) -> None:
    """Move each (environment, flag)'s latest client arrival forward (never back: on PostgreSQL
    a chunk's ids may arrive a little out of time order)."""
    if not newest:
        return
    rows = [{"environment": env, "flag": flag, "received_at": at}
            for (env, flag), at in sorted(newest.items())]  # fmt: skip
    postgres = session.get_bind().dialect.name == "postgresql"
    dialect = postgresql if postgres else sqlite
    statement = dialect.insert(TelemetryArrival.__table__)
    later = (func.greatest if postgres else func.max)(
        TelemetryArrival.__table__.c.received_at, statement.excluded.received_at
    )
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["environment", "flag"], set_={"received_at": later}
        ),
        rows,
    )


def read_client_arrivals(
    session: Session, environment: str, flag: str
) -> tuple[datetime | None, datetime | None]:
    """When a client event carrying `flag` last arrived in `environment`, and when any client
    event did (None: none yet): two rows read by their key."""
    found = read_arrivals(session, [(environment, flag)])
    return found.get((environment, flag)), found.get((environment, ""))


def read_arrivals(session: Session, keys: Collection[ArrivalKey]) -> dict[ArrivalKey, datetime]:
    """The latest client arrival of each (environment, flag) of `keys` and of each of their
    environments alone (flag ""), those that have one, in one query."""
    if not keys:
        return {}
    environments = sorted({environment for environment, _ in keys})
    flags = sorted({flag for _, flag in keys} | {""})
    wanted = {*keys, *((environment, "") for environment in environments)}
    table = TelemetryArrival
    query = select(table.environment, table.flag, table.received_at).where(
        table.environment.in_(environments), table.flag.in_(flags)
    )
    return {(env, flag): at for env, flag, at in session.execute(query) if (env, flag) in wanted}


def _seen(at: datetime, body: str) -> Seen:
    return Seen(orjson.loads(body), int(at.timestamp() * 1000))


def _by_unit(
    events: Sequence[tuple[str, Seen]],
) -> tuple[dict[UnitKey, list[Seen]], dict[UnitKey, Arm]]:
    """Each unit's events, and the exposure units' arms."""
    by_unit: dict[UnitKey, list[Seen]] = defaultdict(list)
    arms: dict[UnitKey, Arm] = {}
    for environment, seen in events:
        for unit in units(seen.body):
            key: UnitKey = (environment, unit.kind, unit.id[:300])
            by_unit[key].append(seen)
            if unit.arm is not None:
                arms[key] = unit.arm
    return by_unit, arms


def _fold(session: Session, events: Sequence[tuple[str, Seen]], now: datetime) -> None:
    by_unit, arms = _by_unit(events)
    before = _states(session, list(by_unit))
    delta: dict[tuple[str, RowKey], Sums] = {}
    states: list[dict[str, Any]] = []
    for key, arrived in by_unit.items():
        environment, kind = key[0], _kind(key[1])
        old = before.get(key, {})
        new = fold(kind, old, arrived, arms.get(key))
        for row, sums in change(kind, old, new).items():
            held = delta.get((environment, row))
            if held is None:
                delta[(environment, row)] = sums.copy()  # change()'s sums may be shared
            else:
                held.add(sums)
        states.append({"environment": environment, "kind": kind, "unit_id": key[2],
                       "state": orjson.dumps(new).decode(), "updated_at": now})  # fmt: skip
    if states:
        session.execute(_upsert(session, TelemetryUnit, ("state", "updated_at")), states)
    _apply(session, delta)


def _upsert(session: Session, table: Any, columns: Sequence[str]) -> Any:
    """INSERT ... ON CONFLICT (primary key) DO UPDATE SET `columns` (SQLite and PostgreSQL)."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = dialect.insert(table.__table__)  # Core: one executemany, not the ORM's bulk path
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
    """The stored states of these units, asked per environment and kind (`unit_id IN (...)`
    under equalities: the primary key's index on both engines, where PostgreSQL scanned the
    whole table for a list of (environment, kind, unit_id) tuples)."""
    by_group: dict[tuple[str, str], list[str]] = defaultdict(list)
    for environment, kind, unit_id in keys:
        by_group[(environment, kind)].append(unit_id)
    postgres = session.get_bind().dialect.name == "postgresql"
    found: dict[UnitKey, State] = {}
    for (environment, kind), ids in by_group.items():
        for start in range(0, len(ids), UNIT_QUERY):
            batch = ids[start : start + UNIT_QUERY]
            query = (_states_by_key if postgres else _states_in)(environment, kind, batch)
            for unit_id, state in session.execute(query):
                found[(environment, kind, unit_id)] = orjson.loads(state)
    return found


def _states_in(environment: str, kind: str, ids: Sequence[str]) -> Any:
    return select(TelemetryUnit.unit_id, TelemetryUnit.state).where(
        TelemetryUnit.environment == environment,
        TelemetryUnit.kind == kind,
        TelemetryUnit.unit_id.in_(ids),
    )


def _states_by_key(environment: str, kind: str, ids: Sequence[str]) -> Any:
    """PostgreSQL: one primary-key lookup per id (`unnest` and a LATERAL subquery), whatever
    the planner's statistics say. With `unit_id IN (...)` a table grown since its last ANALYZE
    (a new unit kind, autovacuum off) was read as "few rows of this kind", and every row of the
    kind was scanned per query."""
    wanted = func.unnest(cast(list(ids), ARRAY(String))).table_valued("id").render_derived("wanted")
    unit = (
        select(TelemetryUnit.unit_id, TelemetryUnit.state)
        .where(TelemetryUnit.environment == environment, TelemetryUnit.kind == kind,
               TelemetryUnit.unit_id == wanted.c.id)
        .limit(1)
        .lateral("unit")
    )  # fmt: skip
    return select(unit.c.unit_id, unit.c.state).select_from(wanted).join(unit, true())


def _apply(session: Session, delta: dict[tuple[str, RowKey], Sums]) -> None:
    """Add each change to its minute row, to its minute's total over platforms and app versions
    (a total wherever a minute row is, empty or not, as `latest` reads them), to its hour row
    and to its day row."""
    minutely: dict[tuple[str, RowKey], Sums] = defaultdict(Sums)
    hourly: dict[tuple[str, RowKey], Sums] = defaultdict(Sums)
    daily: dict[tuple[str, RowKey], Sums] = defaultdict(Sums)
    for (environment, key), sums in delta.items():
        total = key._replace(platform="", app_version="")
        minutely[(environment, total)].add(sums)
    for (environment, key), sums in minutely.items():  # fewer keys: the totals'
        hourly[(environment, key._replace(minute=key.minute - key.minute % HOUR_MS))].add(sums)
        daily[(environment, key._replace(minute=key.minute - key.minute % DAY_MS))].add(sums)
    _add(session, TelemetryRollup, delta)
    _add(session, TelemetryRollupMinute, minutely)
    for table, rows in ((TelemetryRollupHour, hourly), (TelemetryRollupDay, daily)):
        _add(session, table, {k: v for k, v in rows.items() if not v.is_empty()})


def _add(session: Session, table: RollupTable, delta: dict[tuple[str, RowKey], Sums]) -> None:
    """The rows read in one query, written in one upsert (the one rollup job is their only
    writer)."""
    if not delta:
        return
    current = _current(session, table, delta)
    rows = []
    for (environment, key), sums in sorted(delta.items()):
        total_ = current.get((environment, key)) or Sums()
        total_.add(sums)
        rows.append(_values(table, environment, key, total_))
    columns = ("n", "sum_x", "sum_x2", "sum_d", "sum_d2", "sum_xd", "hist")
    session.execute(_upsert(session, table, columns), rows)


def _at(table: RollupTable) -> Any:
    """The row's time column: the minute, the hour or the day."""
    if table is TelemetryRollupDay:
        return table.day
    return table.hour if table is TelemetryRollupHour else table.minute  # type: ignore[union-attr]


def _current(
    session: Session, table: RollupTable, delta: dict[tuple[str, RowKey], Sums]
) -> dict[tuple[str, RowKey], Sums]:
    """The stored sums of the rows in `delta` (read as plain rows: every row of those minutes
    comes back, and only the wanted ones are decoded)."""
    environments = {environment for environment, _ in delta}
    times = {datetime.fromtimestamp(key.minute / 1000, UTC) for _, key in delta}
    cohorts = table is TelemetryRollup
    at = _at(table)
    cohort = (table.platform, table.app_version) if cohorts else ()  # type: ignore[union-attr]
    query = select(
        table.environment, at, table.flag, table.variant, table.metric, *cohort,
        table.n, table.sum_x, table.sum_x2, table.sum_d, table.sum_d2, table.sum_xd, table.hist,
    ).where(table.environment.in_(environments), at.in_(times))  # fmt: skip
    found: dict[tuple[str, RowKey], Sums] = {}
    for row in session.execute(query):
        environment, when, flag, variant, metric = row[:5]
        platform, version = row[5:7] if cohorts else ("", "")
        key = (environment, RowKey(int(when.timestamp() * 1000), flag, variant, platform, version,
                                   metric))  # fmt: skip
        if key in delta:
            n, x, x2, d, d2, xd, hist = row[-7:]
            found[key] = Sums(n, x, x2, d, d2, xd, _hist(hist))
    return found


def _values(table: RollupTable, environment: str, key: RowKey, sums: Sums) -> dict[str, Any]:
    hist = orjson.dumps({str(k): v for k, v in sorted(sums.hist.items())}).decode()
    values = {
        "environment": environment, "metric": key.metric, "flag": key.flag,
        _at(table).key: datetime.fromtimestamp(key.minute / 1000, UTC), "variant": key.variant,
        "n": sums.n, "sum_x": sums.x, "sum_x2": sums.x2, "sum_d": sums.d, "sum_d2": sums.d2,
        "sum_xd": sums.xd, "hist": hist if sums.hist else None,
    }  # fmt: skip
    if table is TelemetryRollup:
        values |= {"platform": key.platform, "app_version": key.app_version}
    return values


def _sums(
    row: TelemetryRollup | TelemetryRollupMinute | TelemetryRollupHour | TelemetryRollupDay,
) -> Sums:
    return Sums(row.n, row.sum_x, row.sum_x2, row.sum_d, row.sum_d2, row.sum_xd, _hist(row.hist))


def _hist(text: str | None) -> dict[int, float]:
    return {int(k): v for k, v in orjson.loads(text).items()} if text else {}


def watermark(core: Core) -> datetime | None:
    """Every event that arrived before this is in the rollups."""
    with core.db.read() as session:
        return read_watermark(session)


def read_watermark(session: Session) -> datetime | None:
    cursor = session.get(TelemetryCursor, CURSOR)
    return cursor.watermark if cursor else None


def window_sums(
    session: Session,
    environment: str,
    metrics: Sequence[str],
    flag: str,
    since: datetime,
    until: datetime,
    quantiles: Collection[str] = (),
) -> dict[str, dict[str, Sums]]:
    """metric -> variant -> the sums of its rows of `flag` ("" = everyone) in [since, until),
    over all platforms and app versions, added up by the database; the histograms too for the
    metrics in `quantiles`."""
    out: dict[str, dict[str, Sums]] = defaultdict(lambda: defaultdict(Sums))
    for table, start, end in spans(since, until):
        at = _at(table)
        where = (table.environment == environment, table.flag == flag, at >= start, at < end)
        totals = (
            select(table.metric, table.variant, *_summed(table))
            .where(table.metric.in_(metrics), *where)
            .group_by(table.metric, table.variant)
        )
        for metric, variant, *values in session.execute(totals):
            out[metric][variant].add(Sums(*values))
        if wanted := [name for name in metrics if name in quantiles]:
            hists = select(table.metric, table.variant, table.hist).where(
                table.metric.in_(wanted), *where, table.hist.is_not(None)
            )
            for (metric, variant), hist in _merged(session.execute(hists)).items():
                out[metric][variant].add(Sums(hist=hist))
    return {metric: dict(arms) for metric, arms in out.items()}


def window_sums_until(
    session: Session,
    environment: str,
    flag: str,
    since: datetime,
    ends: Mapping[str, datetime],
    variants: Collection[str],
) -> dict[str, dict[str, Sums]]:
    """metric -> variant -> the sums of its rows of `flag` in [since, ends[metric]), for these
    variants: `window_sums` where each metric ends at its own time (a rollout's guardrails each
    cut at their lag), without histograms. One query per table of the ladder (its spans, each
    metric's own, an OR of index ranges): at most three, where a query per span start took
    twice as many round trips (and one UNION of them made PostgreSQL start parallel workers,
    slower than the queries alone)."""
    groups: dict[RollupTable, dict[tuple[datetime, datetime], list[str]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for metric, end in ends.items():
        for table, start, stop in spans(since, end):
            groups[table][(start, stop)].append(metric)
    out: dict[str, dict[str, Sums]] = defaultdict(lambda: defaultdict(Sums))
    for table, ranges in groups.items():
        for metric, variant, *values in session.execute(
            _span_sums(table, ranges, environment, flag, variants)
        ):
            out[metric][variant].add(Sums(*values))
    return {metric: dict(arms) for metric, arms in out.items()}


def _span_sums(
    table: RollupTable,
    ranges: Mapping[tuple[datetime, datetime], Sequence[str]],
    environment: str,
    flag: str,
    variants: Collection[str],
) -> Any:
    """The sums per metric and variant of `table`'s rows in each metric's [start, stop): an
    index range per distinct span, OR-ed."""
    at = _at(table)
    cut = or_(
        *(
            and_(table.metric.in_(sorted(names)), at >= start, at < stop)
            for (start, stop), names in sorted(ranges.items())
        )
    )
    return (
        select(table.metric, table.variant, *_summed(table))
        .where(table.environment == environment, table.flag == flag,
               table.variant.in_(sorted(variants)), cut)
        .group_by(table.metric, table.variant)
    )  # fmt: skip


def latest(
    session: Session,
    environment: str,
    metrics: Sequence[str],
    flag: str,
    variants: Collection[str],
    since: datetime,
    until: datetime,
) -> datetime | None:
    """The latest minute in [since, until) in which a unit of these metrics started in one of
    these variants of `flag`, or None: the newest rows first (a day row found is narrowed to
    its hour rows, an hour row to its minutes' totals, when they are still kept)."""
    for table, start, end in reversed(spans(since, until)):
        found = _latest_in(session, table, environment, metrics, flag, variants, start, end)
        if found is None:
            continue
        for finer, step in _finer(table):
            inside = _latest_in(session, finer, environment, metrics, flag, variants, found,
                                found + step)  # fmt: skip
            if inside is None:
                break
            found = inside
        return found
    return None


def _finer(table: RollupTable) -> list[tuple[RollupTable, timedelta]]:
    """The tables a row of `table` is narrowed through, each with the length of the row it
    narrows: a day to its hours, an hour to its minutes' totals."""
    tables = [coarse for coarse, _ in LADDER]
    if table not in tables:
        return []
    tables.append(TelemetryRollupMinute)
    first = tables.index(table)
    return [(tables[i + 1], LADDER[i][1]) for i in range(first, len(LADDER))]


def _latest_in(
    session: Session,
    table: RollupTable,
    environment: str,
    metrics: Sequence[str],
    flag: str,
    variants: Collection[str],
    start: datetime,
    end: datetime,
) -> datetime | None:
    at = _at(table)
    query = select(func.max(at)).where(
        table.environment == environment,
        table.metric.in_(metrics),
        table.flag == flag,
        table.variant.in_(list(variants)),
        at >= start,
        at < end,
    )
    found: datetime | None = session.scalar(query)
    return found


def _merged(rows: Iterable[Any]) -> dict[tuple[str, str], dict[int, float]]:
    """The histograms of the rows added up per (metric, variant): counted as decoded (a few
    thousand rows for a week), the buckets made numbers once at the end."""
    merged: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for metric, variant, hist in rows:
        merged[(metric, variant)].update(orjson.loads(hist))
    return {
        key: {int(bucket): count for bucket, count in counts.items() if abs(count) >= 1e-9}
        for key, counts in merged.items()
    }


def _summed(table: RollupTable) -> list[Any]:
    columns = (table.n, table.sum_x, table.sum_x2, table.sum_d, table.sum_d2, table.sum_xd)
    return [func.sum(column) for column in columns]


Span = tuple[RollupTable, datetime, datetime]


def spans(since: datetime, until: datetime) -> list[Span]:
    """The rows that hold exactly the minutes in [since, until), in time order: the whole UTC
    days from the day rows, the ragged whole hours from the hour rows, the ragged minutes from
    the minutes' totals over platforms and app versions (each as [start, end) of its time
    column)."""
    return _ladder(_ceil(since, MINUTE), _ceil(until, MINUTE), LADDER)


def _ladder(
    start: datetime, end: datetime, levels: Sequence[tuple[RollupTable, timedelta]]
) -> list[Span]:
    if start >= end:
        return []
    if not levels:
        return [(TelemetryRollupMinute, start, end)]
    (table, step), finer = levels[0], levels[1:]
    first, last = _ceil(start, step), end - (end - EPOCH) % step
    if first >= last:
        return _ladder(start, end, finer)
    return [*_ladder(start, first, finer), (table, first, last), *_ladder(last, end, finer)]


def _ceil(at: datetime, step: timedelta) -> datetime:
    over = (at - EPOCH) % step
    return at - over + step if over else at


def purge(core: Core) -> int:
    """Delete minute rows (and client arrivals) past REELOUT_TELEMETRY_ROLLUP_RETENTION_DAYS and
    units no event has touched within REELOUT_TELEMETRY_RAW_RETENTION_DAYS; how many rows went."""
    now, settings = core.clock.now(), core.settings
    old_rows = now - timedelta(days=settings.telemetry_rollup_retention_days)
    idle_units = now - timedelta(days=settings.telemetry_raw_retention_days)
    with core.db.session() as session:
        rows = session.execute(delete(TelemetryRollup).where(TelemetryRollup.minute < old_rows))
        totals = session.execute(
            delete(TelemetryRollupMinute).where(TelemetryRollupMinute.minute < old_rows)
        )
        hours = session.execute(  # the hours all of whose minutes went
            delete(TelemetryRollupHour).where(TelemetryRollupHour.hour <= old_rows - HOUR)
        )
        days = session.execute(  # the days all of whose minutes went
            delete(TelemetryRollupDay).where(TelemetryRollupDay.day <= old_rows - DAY)
        )
        units = session.execute(delete(TelemetryUnit).where(TelemetryUnit.updated_at < idle_units))
        arrivals = session.execute(  # flags no app has reported since the rollups' retention
            delete(TelemetryArrival).where(TelemetryArrival.received_at < old_rows)
        )
    results = (rows, totals, hours, days, units, arrivals)
    return sum(int(getattr(result, "rowcount", 0)) for result in results)


def minute_rows(
    session: Session, environment: str, metric: str, flag: str, since: datetime, until: datetime
) -> Iterable[tuple[datetime, str, Sums]]:
    """(minute, variant, sums) of a metric and flag in [since, until), for series (the minutes'
    totals over platforms and app versions)."""
    rows = session.scalars(_window(environment, metric, flag, since, until))
    for row in rows:
        yield row.minute, row.variant, _sums(row)


def labelled_rows(
    session: Session, metric: str, since: datetime, until: datetime, environment: str | None
) -> Iterable[tuple[str, str, str, Sums]]:
    """(environment, flag, variant, sums) of a metric in [since, until), added up by the
    database over minutes, platforms and app versions (without histograms)."""
    for table, start, end in spans(since, until):
        at = _at(table)
        labels = (table.environment, table.flag, table.variant)
        query = (
            select(*labels, *_summed(table))
            .where(table.metric == metric, at >= start, at < end)
            .group_by(*labels)
        )
        if environment not in (None, "*"):
            query = query.where(table.environment == environment)
        for found_environment, flag, variant, *values in session.execute(query):
            yield found_environment, flag, variant, Sums(*values)


def _window(environment: str, metric: str, flag: str, since: datetime, until: datetime) -> Any:
    return select(TelemetryRollupMinute).where(
        TelemetryRollupMinute.environment == environment,
        TelemetryRollupMinute.metric == metric,
        TelemetryRollupMinute.flag == flag,
        TelemetryRollupMinute.minute >= since,
        TelemetryRollupMinute.minute < until,
    )
