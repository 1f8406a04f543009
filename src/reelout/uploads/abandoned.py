"""Ending abandoned uploads: direct and legacy uploads that stopped mid-body, unused upload links.

A direct or legacy upload whose server died (or whose client went silent) leaves its video in
`uploading` with a partial original; a creator link nobody used leaves a video that can never
get bytes. Once `REELOUT_UPLOAD_ABANDON_SECONDS` pass without activity, the periodic upload
reaper ends such a video in `error` (`ERR_UPLOAD_ABANDONED`, with a `video.error` webhook in the
same transaction) and removes its partial files. tus uploads end through their own expiry.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, exists, or_, select
from sqlalchemy.orm import Session

from reelout.media import service as media
from reelout.media.models import Video
from reelout.media.schemas import VideoState
from reelout.uploads.context import UploadsContext
from reelout.uploads.models import Upload
from reelout.uploads.service import LINK_OWNER, link_lock_key
from reelout.urls import configured_base_url

ABANDONED = "ERR_UPLOAD_ABANDONED"
STREAMED = ("direct", "legacy")  # sources whose bytes arrive in one request


def _stale(cutoff: datetime, now: datetime) -> ColumnElement[bool]:
    """Videos still `uploading` with no activity since `cutoff` that nothing can finish: a
    streamed upload, or a tus video with no upload in progress whose link can start none."""
    no_upload = ~exists().where(
        or_(Upload.video_uid == Video.uid, Upload.created_by == LINK_OWNER + Video.uid)
    )
    link_unusable = or_(
        Video.upload_token_expires_at.is_(None),
        Video.upload_token_expires_at <= now,
        Video.upload_token_used_at.is_not(None),
    )
    return (
        (Video.state == VideoState.uploading.value)
        & (Video.modified_at <= cutoff)
        & (Video.source.in_(STREAMED) | (no_upload & link_unusable))
    )


def _end(session: Session, rt: UploadsContext, uid: str, now: datetime) -> bool:
    cutoff = now - timedelta(seconds=rt.settings.upload_abandon_seconds)
    query = select(Video).where(Video.uid == uid, _stale(cutoff, now)).with_for_update()
    video = session.scalar(query)
    if video is None:
        return False
    text = (
        f"the upload was abandoned: no bytes arrived for {rt.settings.upload_abandon_seconds} s; "
        "upload the video again"
        if video.source in STREAMED
        else "the upload link expired with no upload under way; make a new link"
    )
    base_url = configured_base_url(rt.settings)
    media.upload_failed(session, rt.clock, uid, ABANDONED, text, base_url=base_url)
    return True


def reap_abandoned(rt: UploadsContext) -> int:
    """End every abandoned upload's video and remove its partial files; returns how many."""
    now = rt.clock.now()
    cutoff = now - timedelta(seconds=rt.settings.upload_abandon_seconds)
    with rt.db.read() as session:
        uids = list(session.scalars(select(Video.uid).where(_stale(cutoff, now))))
    ended = 0
    for uid in uids:
        with rt.db.session() as session:
            done = _end(session, rt, uid, now)
        if done:
            rt.media_store.delete_video(uid)
            rt.locker.forget(link_lock_key(uid))  # the link's lock files, if it ever took them
            ended += 1
    return ended
