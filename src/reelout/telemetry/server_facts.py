"""What the server saw itself, as telemetry events: uploads finishing or failing at its endpoints
(per method) and processing ready or failed, read from the videos' state history after the fact
(a cursor), so KPIs hold when no client reports and the upload paths do no extra work. Event ids
derive from what they record, so a replay stores nothing twice. (OFREP's exposures are written
as events by the exposure log itself, as it flushes.)"""

from __future__ import annotations

from typing import Any

from reelout.context import Core
from reelout.media.history import Transition, transitions_since
from reelout.telemetry.models import TelemetryCursor
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
        events = [event for change in changes for event in _facts_of(change)]
        stored += ingest(core, environment, events, source="server").accepted
        _advance(core, "videos", changes[-1].id)
        if len(changes) < BATCH:
            return stored


def _facts_of(change: Transition) -> list[dict[str, Any]]:
    base = {
        "client_time": change.at.isoformat(),
        "viewer_id": f"video:{change.video_uid}",
        "video_id": change.video_uid,
        "source": "server",
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
