"""Telemetry ingest: store a checked batch once per event_id (durable before the answer), record
the server's own facts as events, and drop raw events past their retention."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

import orjson
from sqlalchemy import delete, func, select
from sqlalchemy.engine import CursorResult

from reelout.context import Core
from reelout.telemetry.batches import Checked, Limits, Rejected, check
from reelout.telemetry.events import event_time
from reelout.telemetry.inserts import NewBatch, NewEvent, insert_new
from reelout.telemetry.models import TelemetryEvent

SERVER_FACTS = uuid.UUID("6f1d3c3e-6c38-4c55-9d2a-7d1f2b3a9e01")  # namespace of server event ids
PURGE_ROWS = 5_000  # raw events deleted per statement by the retention purge


@dataclass(frozen=True)
class Outcome:
    """What became of a batch: stored now, stored before (same event_id), refused."""

    accepted: int
    duplicates: int
    rejected: list[Rejected] = field(default_factory=list)
    types: dict[str, Counter[str]] = field(default_factory=dict)  # outcome -> type -> events

    def body(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": [
                {"index": r.index, "code": r.code, "message": r.message} for r in self.rejected
            ],
        }


def limits(core: Core) -> Limits:
    settings = core.settings
    return Limits(
        settings.telemetry_max_batch_events,
        settings.telemetry_max_event_bytes,
        settings.json_max_depth,
    )


@dataclass(frozen=True)
class Prepared:
    """A batch checked and turned into rows, before it is stored."""

    accepted: list[Checked]
    rejected: list[Rejected]
    rows: list[NewEvent]
    received_at: datetime
    source: str

    def to(self, environment: str) -> NewBatch:
        """The rows to store into `environment`."""
        return NewBatch(environment, self.source, self.received_at, self.rows)

    def outcome(self, new: set[str]) -> Outcome:
        """What became of the batch, given the ids that were new (32 hex digits)."""
        accepted, rejected = self.accepted, self.rejected
        types = {
            "accepted": Counter(i.event.type for i in accepted if i.event.event_id.hex in new),
            "duplicate": Counter(i.event.type for i in accepted if i.event.event_id.hex not in new),
            "rejected": Counter({"other": len(rejected)}),
        }
        return Outcome(len(new), len(accepted) - len(new), rejected, types)


def prepare(core: Core, raw: Sequence[Any], source: str = "client") -> Prepared:
    """Check each event and make the rows of the good ones (once per event_id); pure CPU."""
    accepted, rejected = check(raw, limits(core), server=source == "server")
    received_at = core.clock.now()
    unique = {item.event.event_id: item for item in accepted}
    rows = [_row(item, source, received_at) for item in unique.values()]
    return Prepared(accepted, rejected, rows, received_at, source)


def ingest(core: Core, environment: str, raw: Sequence[Any], source: str = "client") -> Outcome:
    """Check each event and store the good ones; committed before this returns."""
    prepared = prepare(core, raw, source)
    return prepared.outcome(store(core, prepared.to(environment)))


def store(core: Core, batch: NewBatch) -> set[str]:
    """Insert the rows whose event_id is new; their ids (as 32 hex digits)."""
    if not batch.rows:
        return set()
    with core.db.session() as session:
        return insert_new(session.connection(), batch)


def _row(item: Checked, source: str, received_at: datetime) -> NewEvent:
    event = item.event
    body = _marked(item.body, source).decode()
    return NewEvent(
        event.event_id, event.type, event.viewer_id, event_time(event, received_at), body
    )


def _marked(body: bytes, source: str) -> bytes:
    """The event as stored: `source` is the server's word, never the sender's."""
    if source == "server":
        return orjson.dumps({**orjson.loads(body), "source": "server"})
    if b'"source"' not in body:
        return body
    event = orjson.loads(body)
    event.pop("source", None)
    return orjson.dumps(event)


def server_event_id(name: str) -> str:
    """The event id of a server fact named `name` (the same fact, the same id)."""
    return str(uuid.uuid5(SERVER_FACTS, name))


def purge(core: Core) -> int:
    """Delete raw events received before the retention (REELOUT_TELEMETRY_RAW_RETENTION_DAYS)."""
    cutoff = core.clock.now() - timedelta(days=core.settings.telemetry_raw_retention_days)
    ids = select(TelemetryEvent.id).where(TelemetryEvent.received_at < cutoff).limit(PURGE_ROWS)
    deleted = 0
    while True:
        with core.db.session() as session:
            result = session.execute(delete(TelemetryEvent).where(TelemetryEvent.id.in_(ids)))
        rows = int(cast(CursorResult[Any], result).rowcount)
        deleted += rows
        if rows < PURGE_ROWS:
            return deleted


def count(core: Core, environment: str | None = None) -> int:
    """How many raw events are stored (in one environment)."""
    query = select(func.count()).select_from(TelemetryEvent)
    if environment:
        query = query.where(TelemetryEvent.environment == environment)
    with core.db.session() as session:
        return int(session.scalar(query) or 0)


def stored_event(core: Core, event_id: uuid.UUID) -> dict[str, Any] | None:
    """One stored event as received, with what the server added."""
    with core.db.session() as session:
        row = session.scalar(select(TelemetryEvent).where(TelemetryEvent.event_id == event_id))
    if row is None:
        return None
    added = {"environment": row.environment, "source": row.source}
    return {**orjson.loads(row.body), **added, "received_at": row.received_at.isoformat()}
