"""What the server saw itself, as telemetry events: uploads finishing or failing at its endpoints
(per method) and processing ready or failed, read from the videos' state history after the fact
(a cursor), so KPIs hold when no client reports and the upload paths do no extra work. Event ids
derive from what they record, so a replay stores nothing twice. (OFREP's exposures are written
as events by the exposure log itself, as it flushes.)

An upload whose metadata names its uploader (`viewer_id`, the targeting key the app evaluates
flags with) counts for that viewer, in the arms OFREP served them before the fact (their latest
exposure of each flag): the server's upload success rate compares arms like the client's does.
Without it the fact counts for everyone only (viewer `video:<uid>`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import select

from reelout.context import Core
from reelout.media.history import Transition, transitions_since
from reelout.telemetry.events import MAX_FLAGS
from reelout.telemetry.models import TelemetryCursor, TelemetryEvent
from reelout.telemetry.service import ingest, server_event_id

BATCH = 1_000
METHODS = {"tus": "tus", "direct": "direct", "legacy": "base64"}


def collect(core: Core) -> int:
    """Record every new server fact; how many events were stored."""
    return _video_facts(core)


def _video_facts(core: Core) -> int:
    stored = 0
    while True:
        with core.db.read() as session:
            cursor = session.get(TelemetryCursor, "videos")
            after = cursor.last_id if cursor else 0
            changes = transitions_since(session, after, BATCH)
        if not changes:
            return stored
        environment = core.settings.telemetry_server_environment
        arms = _served_arms(core, environment, {_uploader(c) for c in changes} - {None})
        events = [event for change in changes for event in _facts_of(change, arms)]
        stored += ingest(core, environment, events, source="server").accepted
        _advance(core, "videos", changes[-1].id)
        if len(changes) < BATCH:
            return stored


def _uploader(change: Transition) -> str | None:
    """The viewer an upload's metadata names (`viewer_id`), if it is a usable one."""
    viewer = change.meta.get("viewer_id")
    return viewer if isinstance(viewer, str) and 0 < len(viewer.strip()) <= 255 else None


Exposures = dict[str, list[tuple[datetime, str, str]]]  # viewer -> (when, flag, variant), in order


def _served_arms(core: Core, environment: str, viewers: set[str | None]) -> Exposures:
    """The exposures of these viewers in `environment`, oldest first."""
    if not viewers:
        return {}
    query = (
        select(TelemetryEvent.viewer_id, TelemetryEvent.event_time, TelemetryEvent.body)
        .where(TelemetryEvent.environment == environment, TelemetryEvent.type == "exposure")
        .where(TelemetryEvent.viewer_id.in_(viewers))
        .order_by(TelemetryEvent.event_time, TelemetryEvent.id)
    )
    found: Exposures = {}
    with core.db.read() as session:
        for viewer, at, body in session.execute(query):
            event = orjson.loads(body)
            found.setdefault(viewer, []).append((at, event["flag"], event["variant"]))
    return found


def _flags_at(exposures: list[tuple[datetime, str, str]], at: datetime) -> dict[str, str]:
    """Each flag's variant as last served at or before `at` (the latest MAX_FLAGS flags)."""
    served = {flag: variant for seen, flag, variant in exposures if seen <= at}
    return dict(list(served.items())[-MAX_FLAGS:])


def _facts_of(change: Transition, arms: Exposures) -> list[dict[str, Any]]:
    uploader = _uploader(change)
    base = {
        "client_time": change.at.isoformat(),
        "viewer_id": uploader or f"video:{change.video_uid}",
        "video_id": change.video_uid,
        "source": "server",
        "flags": _flags_at(arms.get(uploader or "", []), change.at),
    }
    method = METHODS.get(change.source)
    out: list[dict[str, Any]] = []
    if change.from_state == "uploading" and method:
        attempt = {**base, "upload_id": f"server:{change.video_uid}", "method": method}
        if change.to_state == "error":
            out.append({**attempt, "type": "upload_failed", "retryable": False,
                        "error_class": change.error_code or "unknown"})  # fmt: skip
        else:
            took = max(0, int((change.at - change.created_at).total_seconds() * 1000))
            out.append({**attempt, "type": "upload_completed", "bytes": change.size or 0,
                        "duration_ms": took})  # fmt: skip
    elif change.to_state == "ready":
        out.append({**base, "type": "processing_ready"})
    elif change.to_state == "error" and change.from_state in ("queued", "processing"):
        out.append({**base, "type": "processing_failed", "error_code": change.error_code})
    return [
        {**event, "event_id": server_event_id(f"video-change:{change.id}:{i}")}
        for i, event in enumerate(out)
    ]


def _advance(core: Core, name: str, last_id: int) -> None:
    with core.db.session() as session:
        cursor = session.get(TelemetryCursor, name) or TelemetryCursor(name=name, last_id=0)
        cursor.last_id = max(cursor.last_id, last_id)
        session.merge(cursor)
