"""One batch of events into `telemetry_events` in one statement per dialect, new event ids only.

Hand-written SQL: through the ORM (or a Core insert with its type decorators) the per-parameter
processing in Python cost more CPU than the database spent inserting, and on PostgreSQL the
800-parameter VALUES list was too long for psycopg's statement cache, so it was parsed again on
every batch (bench/README.md, "Telemetry ingest"). Here SQLite gets one multi-row `VALUES …
RETURNING` whose text depends only on the row count (the driver caches it), and PostgreSQL one
fixed `INSERT … SELECT FROM unnest(arrays)` that psycopg prepares once per connection. The values
are written in the forms SQLAlchemy's types read back (see `TelemetryEvent`).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

from sqlalchemy.engine import Connection

SQLITE_ROWS_PER_STATEMENT = 500  # 4,000 parameters: far below SQLite's 32,766


@dataclass(frozen=True, slots=True)
class NewEvent:
    """One row of `telemetry_events`, apart from the batch's environment, source and arrival."""

    event_id: uuid.UUID
    type: str
    viewer_id: str
    event_time: datetime
    body: str


@dataclass(frozen=True, slots=True)
class NewBatch:
    """The rows of one accepted batch, with what they share."""

    environment: str
    source: str  # client | server
    received_at: datetime
    rows: Sequence[NewEvent]


def insert_new(connection: Connection, batch: NewBatch) -> set[str]:
    """Insert the rows whose event_id is not stored yet, in the caller's transaction; their ids
    (as 32 hex digits)."""
    if not batch.rows:
        return set()
    if connection.dialect.name == "postgresql":
        return _postgresql(connection, batch)
    inserted: set[str] = set()
    for start in range(0, len(batch.rows), SQLITE_ROWS_PER_STATEMENT):
        chunk = batch.rows[start : start + SQLITE_ROWS_PER_STATEMENT]
        inserted |= _sqlite(connection, batch, chunk)
    return inserted


_UNNEST = (
    "INSERT INTO telemetry_events "
    "(event_id, environment, type, source, viewer_id, event_time, received_at, body) "
    "SELECT e.event_id, %s, e.type, %s, e.viewer_id, e.event_time, %s, e.body "
    "FROM unnest(%b::uuid[], %b::text[], %b::text[], %b::timestamptz[], %b::text[]) "
    "AS e(event_id, type, viewer_id, event_time, body) "
    "ON CONFLICT (event_id) DO NOTHING RETURNING event_id"
)


def _postgresql(connection: Connection, batch: NewBatch) -> set[str]:
    rows = batch.rows
    columns = (
        [row.event_id for row in rows],
        [row.type for row in rows],
        [row.viewer_id for row in rows],
        [row.event_time for row in rows],
        [row.body for row in rows],
    )
    cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        # %b, the binary form: the text form of a text[] escapes every quote of every body
        cursor.execute(_UNNEST, (batch.environment, batch.source, batch.received_at, *columns))
        return {event_id.hex for (event_id,) in cursor.fetchall()}
    finally:
        cursor.close()


def _sqlite(connection: Connection, batch: NewBatch, rows: Sequence[NewEvent]) -> set[str]:
    arrived, environment, source = sqlite_time(batch.received_at), batch.environment, batch.source
    params: list[str] = []
    for row in rows:
        params += (
            row.event_id.hex,
            environment,
            row.type,
            source,
            row.viewer_id,
            sqlite_time(row.event_time),
            arrived,
            row.body,
        )
    result = connection.exec_driver_sql(_sqlite_statement(len(rows)), tuple(params))
    return {event_id for (event_id,) in result}


@lru_cache(maxsize=64)
def _sqlite_statement(rows: int) -> str:
    values = ",".join(["(?,?,?,?,?,?,?,?)"] * rows)  # placeholders only: no value is formatted
    return (
        "INSERT INTO telemetry_events "  # noqa: S608
        "(event_id, environment, type, source, viewer_id, event_time, received_at, body) "
        f"VALUES {values} ON CONFLICT (event_id) DO NOTHING RETURNING event_id"
    )


def sqlite_time(moment: datetime) -> str:
    """A UTC datetime as SQLAlchemy stores it in SQLite (naive, always with microseconds)."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
