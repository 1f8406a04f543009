"""Telemetry events as the database holds them, and the checks every reported view or upload
must pass (each event valid against the model; one id; `seq` counting 0, 1, 2, … in order)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from sqlalchemy import select

from reelout.telemetry import events as model
from reelout.telemetry.models import TelemetryEvent
from tests.support.live import LiveServer
from tests.support.waiting import wait_until

Event = dict[str, Any]


def stored_events(live: LiveServer, **match: Any) -> list[Event]:
    """Every stored event (its JSON plus `environment` and `source`) in order of arrival, those
    whose fields equal `match`."""
    with live.runtime.db.session() as session:
        rows = session.scalars(select(TelemetryEvent).order_by(TelemetryEvent.id)).all()
        found = [
            {**orjson.loads(row.body), "environment": row.environment, "source": row.source}
            for row in rows
        ]
    return [event for event in found if all(event.get(k) == v for k, v in match.items())]


def wait_for_events(
    live: LiveServer,
    until: Callable[[list[Event]], bool],
    timeout: float = 30,
    message: str = "",
    **match: Any,
) -> list[Event]:
    """The stored events matching `match`, once `until(events)` holds."""

    def ready() -> list[Event] | None:
        found = stored_events(live, **match)
        return found if until(found) else None

    result = wait_until(ready, timeout, message or f"events {match}", interval=0.2)
    return result


def has_types(*types: str) -> Callable[[list[Event]], bool]:
    return lambda events: set(types) <= {event["type"] for event in events}


def one_sequence(events: list[Event], id_field: str) -> list[Event]:
    """The events of one view (or upload), valid, ordered by `seq`, which counts from 0 with
    no gap or repeat; the same id throughout."""
    assert events, f"no events with a {id_field}"
    for event in events:
        model.parse(event)  # the ingest checked them; the test says so too
    assert len({event[id_field] for event in events}) == 1, f"more than one {id_field}"
    ordered = sorted(events, key=lambda event: event["seq"])
    assert [event["seq"] for event in ordered] == list(range(len(ordered))), "seq has gaps"
    assert len({event["event_id"] for event in ordered}) == len(ordered)
    return ordered


def types_of(events: list[Event]) -> list[str]:
    return [event["type"] for event in events]
