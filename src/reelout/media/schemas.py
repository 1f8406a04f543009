"""API shapes of the media domain: the video object (modelled on Cloudflare Stream's)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, Field


class VideoState(StrEnum):
    uploading = "uploading"
    queued = "queued"
    processing = "processing"
    ready = "ready"
    error = "error"


class Stage(StrEnum):
    inbound = "inbound"
    work = "work"
    outbound = "outbound"


class VideoStatus(BaseModel):
    state: VideoState
    pct_complete: float | None = None
    error_code: str | None = None
    error_text: str | None = None


class InputSize(BaseModel):
    width: int = Field(description="Display width of the source (rotation and SAR applied).")
    height: int


class Playback(BaseModel):
    hls: str = Field(description="HLS master playlist; add ?max_height=N to cap the ladder.")
    mp4: str = Field(description="Progressive MP4 (the top rendition) for players without HLS.")


class Rendition(BaseModel):
    name: str
    width: int
    height: int
    bandwidth: int = Field(description="Peak bits/s over the rendition's segments, audio included.")
    average_bandwidth: int
    codecs: str
    frame_rate: float


class VideoOut(BaseModel):
    uid: str
    created: datetime
    modified: datetime
    size: int | None
    duration: float | None = Field(description="Seconds; known once processing has probed it.")
    input: InputSize | None
    meta: dict[str, Any]
    order_id: str | None
    stage: Stage | None
    source: str
    status: VideoStatus
    ready_to_stream: bool
    playback: Playback | None
    thumbnail: str | None = Field(description="Poster JPEG.")
    renditions: list[Rendition]
    allowed_origins: list[str] = Field(description="Origins allowed to play; empty: any.")
    require_signed_urls: bool
    original_sha256: str | None


class StateChange(BaseModel):
    """One change of a video's state."""

    at: datetime
    from_state: VideoState | None = Field(description="null: the video was created.")
    to_state: VideoState
    error_code: str | None = Field(description="Why processing or the upload failed.")
    reason: str | None = Field(description="What happened, in words (an error's message).")
    attempt: int | None = Field(
        description="The processing job's attempt (1 is the first) that made the change; "
        "null for changes outside processing."
    )


class VideoHistory(BaseModel):
    uid: str
    changes: list[StateChange] = Field(description="Oldest first.")


class VideoUpdate(BaseModel):
    meta: dict[str, Any] | None = None
    allowed_origins: list[str] | None = Field(default=None, max_length=100)
    require_signed_urls: bool | None = None


class VideoPage(BaseModel):
    videos: list[VideoOut]
    next_cursor: str | None = Field(description="Pass as ?cursor= to get the next page.")


class CreatorUploadRequest(BaseModel):
    upload: Literal["tus"] = "tus"
    meta: dict[str, Any] = Field(default_factory=dict)
    max_bytes: int | None = Field(default=None, ge=0, description="Largest upload accepted.")
    expires_in: int | None = Field(
        default=None, ge=60, le=7 * 86400, description="Seconds the upload link stays valid."
    )


class UploadLink(BaseModel):
    url: str = Field(description="The tus endpoint to create the upload at.")
    token: str = Field(description="Send as 'Authorization: Bearer <token>'; one upload only.")
    expires_at: datetime
    max_bytes: int


class CreatorUpload(BaseModel):
    uid: str
    upload: UploadLink


class PlaybackInfo(BaseModel):
    """Everything a player needs to start: what to play, how to cap it, what to fall back to."""

    hls: str
    hls_capped: str = Field(description="The master capped at recommended_max_height.")
    mp4: str
    poster: str
    duration: float | None
    renditions: list[Rendition]
    recommended_max_height: int | None = Field(
        description="Short side to cap a non-adaptive player (media_kit) at."
    )


class TokenRequest(BaseModel):
    expires_in: int | None = Field(
        default=None, ge=60, description="Seconds the token lasts (rounded up to 5 minutes)."
    )


class PlaybackToken(BaseModel):
    token: str = Field(description="Add as ?token= to the master; it is carried on from there.")
    expires_at: datetime
    hls: str
    mp4: str
    poster: str
