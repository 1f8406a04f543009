"""A telemetry batch from its bytes: JSON (an array, `{"events": [...]}` or one event) or NDJSON,
each event checked on its own so one bad event never costs the others. Pure: no I/O."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import TypeAdapter, ValidationError

from reelout.errors import BadRequest, PayloadTooLarge
from reelout.jsondepth import too_deep, too_deep_message
from reelout.telemetry.events import EVENT, SERVER_ONLY, Common, Event

BATCH = TypeAdapter[list[Any]](list[Event])


@dataclass(frozen=True)
class Limits:
    """The named limits of one batch (REELOUT_TELEMETRY_MAX_BATCH_EVENTS, ..._MAX_EVENT_BYTES,
    REELOUT_JSON_MAX_DEPTH for one event)."""

    max_events: int
    max_event_bytes: int
    max_depth: int


@dataclass(frozen=True)
class Rejected:
    """Event `index` of the batch was refused: why, as a code and in words."""

    index: int
    code: str
    message: str


@dataclass(frozen=True)
class Checked:
    """An accepted event, with its JSON as stored."""

    index: int
    event: Common
    body: bytes


def items(body: bytes, ndjson: bool) -> list[Any]:
    """The batch's events as decoded JSON values; a line of NDJSON that is not JSON is kept as
    `_Unreadable` so that it is rejected alone, at its index. (Each event's own nesting is
    checked with the event; orjson itself stops a body at 1,024 levels.)"""
    if ndjson:
        return [_line(line) for line in body.splitlines() if line.strip()]
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if "depth limit" in str(exc):
            raise BadRequest(
                "the JSON body nests more than 1,024 levels deep; send a flat list of events",
                code="JSON_TOO_DEEP",
            ) from exc
        raise BadRequest(
            f"the body is not JSON ({exc}); send an array of events, "
            '{"events": [...]}, or one event per line as application/x-ndjson',
            code="INVALID_JSON",
        ) from exc
    if isinstance(value, dict) and isinstance(value.get("events"), list):
        return list(value["events"])
    return value if isinstance(value, list) else [value]


class _Unreadable:
    def __init__(self, error: str) -> None:
        self.error = error


def _line(line: bytes) -> Any:
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        return _Unreadable(str(exc))


def check(
    raw: Sequence[Any], limits: Limits, server: bool = False
) -> tuple[list[Checked], list[Rejected]]:
    """Every event validated on its own: the accepted ones and the rejected ones' reasons.
    `server` admits the types only the server reports (processing outcomes)."""
    if len(raw) > limits.max_events:
        raise PayloadTooLarge(
            f"the batch holds {len(raw)} events, over {limits.max_events} "
            "(REELOUT_TELEMETRY_MAX_BATCH_EVENTS); split it",
            code="BATCH_TOO_LARGE",
        )
    try:
        events = BATCH.validate_python(raw)  # the fast path: a whole good batch in one call
        bodies = [_encoded(item) for item in raw]
    except (ValidationError, TypeError):
        return _one_by_one(raw, limits, server)
    if any(_oversized(body, limits) for body in bodies) or (
        not server and any(event.type in SERVER_ONLY for event in events)
    ):
        return _one_by_one(raw, limits, server)
    return [Checked(i, e, b) for i, (e, b) in enumerate(zip(events, bodies, strict=True))], []


def _one_by_one(
    raw: Sequence[Any], limits: Limits, server: bool
) -> tuple[list[Checked], list[Rejected]]:
    accepted: list[Checked] = []
    rejected: list[Rejected] = []
    for index, item in enumerate(raw):
        outcome = _check_one(index, item, limits, server)
        (accepted if isinstance(outcome, Checked) else rejected).append(outcome)  # type: ignore[arg-type]
    return accepted, rejected


def _check_one(index: int, item: Any, limits: Limits, server: bool) -> Checked | Rejected:
    if isinstance(item, _Unreadable):
        return Rejected(index, "INVALID_JSON", f"this line is not JSON ({item.error})")
    if not isinstance(item, dict):
        return Rejected(index, "INVALID_EVENT", "an event is a JSON object")
    body = _encoded(item)
    if len(body) > limits.max_event_bytes:
        return Rejected(
            index,
            "EVENT_TOO_LARGE",
            f"the event is {len(body)} bytes, over {limits.max_event_bytes} "
            "(REELOUT_TELEMETRY_MAX_EVENT_BYTES)",
        )
    if too_deep(body, limits.max_depth):
        return Rejected(index, "JSON_TOO_DEEP", too_deep_message(limits.max_depth))
    try:
        event: Common = EVENT.validate_python(item)
    except ValidationError as exc:
        return Rejected(index, "INVALID_EVENT", _first_error(exc))
    if event.type in SERVER_ONLY and not server:
        return Rejected(index, "SERVER_ONLY_TYPE", f"only the server reports {event.type!r}")
    return Checked(index, event, body)


def _oversized(body: bytes, limits: Limits) -> bool:
    return len(body) > limits.max_event_bytes or too_deep(body, limits.max_depth)


def _encoded(item: Any) -> bytes:
    return orjson.dumps(item)


def _first_error(exc: ValidationError) -> str:
    error = exc.errors(include_url=False)[0]
    where = ".".join(str(part) for part in error["loc"])
    more = exc.error_count() - 1
    tail = f" (and {more} more)" if more else ""
    return f"{where}: {error['msg']}{tail}" if where else f"{error['msg']}{tail}"
