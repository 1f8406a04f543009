"""A video's state history: the one place a video's state changes, each change kept as a row."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import inspect, select
from sqlalchemy.orm import Session

from reelout.clock import Clock
from reelout.media.models import Video, VideoStateChange
from reelout.media.schemas import StateChange, VideoHistory, VideoState


def change_state(
    session: Session,
    clock: Clock,
    video: Video,
    to: VideoState,
    *,
    error_code: str | None = None,
    reason: str | None = None,
    attempt: int | None = None,
) -> None:
    """Move the video to `to` and record the change in the same transaction. Every change of
    a video's state goes through here (a new video's first state too: from None)."""
    now = clock.now()
    session.add(
        VideoStateChange(
            video_uid=video.uid,
            at=now,
            from_state=video.state,
            to_state=to.value,
            error_code=error_code,
            reason=reason,
            attempt=attempt,
        )
    )
    video.state = to.value
    video.modified_at = now


def unrecorded(session: Session) -> list[str]:
    """The videos about to be flushed with a new state that `change_state` did not record
    (what tests check before every flush: a transition that skips the history)."""
    recorded = {
        (row.video_uid, row.to_state) for row in session.new if isinstance(row, VideoStateChange)
    }
    missing = []
    for video in [*session.new, *session.dirty]:
        if not isinstance(video, Video):
            continue
        changed = inspect(video).attrs.state.history.added
        if changed and (video.uid, video.state) not in recorded:
            missing.append(f"{video.uid}: {video.state}")
    return missing


def history(session: Session, uid: str) -> VideoHistory:
    """Every state the video has been in, oldest first."""
    query = select(VideoStateChange).where(VideoStateChange.video_uid == uid)
    rows = session.scalars(query.order_by(VideoStateChange.id))
    return VideoHistory(uid=uid, changes=[_change(row) for row in rows])


def _change(row: VideoStateChange) -> StateChange:
    return StateChange(
        at=row.at,
        from_state=VideoState(row.from_state) if row.from_state else None,
        to_state=VideoState(row.to_state),
        error_code=row.error_code,
        reason=row.reason,
        attempt=row.attempt,
    )


@dataclass(frozen=True)
class Transition:
    """One recorded change of state with what the telemetry of server facts needs of its video."""

    id: int
    video_uid: str
    at: datetime
    from_state: str | None
    to_state: str
    error_code: str | None
    source: str
    size: int | None
    created_at: datetime
    meta: dict[str, Any]


def transitions_since(session: Session, after_id: int, limit: int) -> list[Transition]:
    """The state changes recorded after `after_id`, oldest first (at most `limit`)."""
    rows = session.execute(
        select(VideoStateChange, Video.source, Video.size, Video.created_at, Video.meta)
        .join(Video, Video.uid == VideoStateChange.video_uid)
        .where(VideoStateChange.id > after_id)
        .order_by(VideoStateChange.id)
        .limit(limit)
    ).all()
    return [
        Transition(c.id, c.video_uid, c.at, c.from_state, c.to_state, c.error_code, s, n, t, m)
        for c, s, n, t, m in rows
    ]
