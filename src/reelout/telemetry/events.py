"""The telemetry event model, version 1: every event type an app or the server reports, as data.

Modelled on the industry's playback-event practice (Mux Data's canonical events; Sentry's
session statuses for `app_session`): one flat JSON object per event, common fields plus the
fields of its `type`. Unknown fields are ignored, so an app on a newer SDK still reports to an
older server; a wrong type or value is refused for that event alone. Pure: no I/O.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter

SCHEMA_VERSION = 1
MAX_FLAGS = 64  # flags one event may carry

Text = Annotated[str, Field(min_length=1, max_length=255)]
Short = Annotated[str, Field(min_length=1, max_length=64)]
Count = Annotated[int, Field(ge=0, le=2**53)]
Millis = Annotated[int, Field(ge=0, le=2**53, description="milliseconds")]
Player = Literal["media_kit", "video_player", "hls.js", "avplayer", "exoplayer", "other"]
UploadMethod = Literal["tus", "direct", "base64"]


class Common(BaseModel):
    """Fields every event has. `viewer_id` is the randomization unit: the targeting key the
    flags hash, so an event lands in the arm its viewer was served."""

    model_config = ConfigDict(extra="ignore", frozen=True, str_strip_whitespace=True)

    type: str = Field(description="what happened; each type adds its own fields")
    event_id: UUID = Field(description="unique per event; the idempotency key of the ingest")
    schema_version: Literal[1] = Field(default=1, description="the event model's version")
    viewer_id: Text = Field(description="the targeting key the flags hash (user or device id)")
    client_time: AwareDatetime = Field(
        description="when it happened on the device, RFC 3339 with an offset"
    )
    session_id: Text | None = Field(default=None, description="the app session")
    view_id: Text | None = Field(default=None, description="one attempt to watch one video")
    upload_id: Text | None = Field(default=None, description="one upload attempt")
    seq: Count | None = Field(default=None, description="monotonic per view or upload")
    platform: Short | None = Field(default=None, description="ios, android, web, macos, ...")
    app_version: Short | None = Field(default=None, description="the app's version")
    player: Player | None = Field(default=None, description="the player library")
    video_id: Text | None = Field(default=None, description="the Reelout video uid")
    playhead_ms: Millis | None = Field(default=None, description="position in the video")
    flags: dict[Text, Text] = Field(
        default_factory=dict,
        max_length=MAX_FLAGS,
        description="flag key -> variant the app was served; attributes the event to arms",
    )


class Exposure(Common):
    """The app was served a variant of a flag (OFREP writes these itself)."""

    type: Literal["exposure"]
    flag: Text
    variant: Text


class UploadStarted(Common):
    type: Literal["upload_started"]
    method: UploadMethod | None = None
    bytes: Count | None = Field(default=None, description="the file's size")


class UploadProgress(Common):
    type: Literal["upload_progress"]
    bytes_sent: Count
    bytes_total: Count | None = None


class UploadCompleted(Common):
    type: Literal["upload_completed"]
    bytes: Count
    duration_ms: Millis
    method: UploadMethod
    attempts: Annotated[int, Field(ge=1, le=1000)] = 1


class UploadFailed(Common):
    type: Literal["upload_failed"]
    error_class: Short
    retryable: bool
    method: UploadMethod | None = None
    bytes: Count | None = None
    attempts: Annotated[int, Field(ge=1, le=1000)] = 1


class UploadAbandoned(Common):
    type: Literal["upload_abandoned"]


class PlayerReady(Common):
    type: Literal["player_ready"]
    player_startup_ms: Millis | None = Field(default=None, description="init -> ready")


class PlayRequest(Common):
    """Play intent (a tap or autoplay): a view's start and its startup clock's start."""

    type: Literal["play_request"]
    autoplay: bool = False


class Playing(Common):
    """The first frame is shown and the playhead moves (and again on each resume)."""

    type: Literal["playing"]


class Pause(Common):
    type: Literal["pause"]


class Seeking(Common):
    type: Literal["seeking"]


class Seeked(Common):
    type: Literal["seeked"]


class RebufferStart(Common):
    """A stall after the first frame that no seek caused."""

    type: Literal["rebuffer_start"]


class RebufferEnd(Common):
    type: Literal["rebuffer_end"]
    duration_ms: Millis | None = None


class RenditionChange(Common):
    type: Literal["rendition_change"]
    bitrate: Count
    width: Count | None = None
    height: Count | None = None
    codec: Short | None = None


class PlaybackError(Common):
    type: Literal["error"]
    code: Short
    message: Annotated[str, Field(max_length=1000)] | None = None
    fatal: bool
    category: Literal["playback", "business", "warning"] = "playback"
    before_first_frame: bool = False


class ViewCounters(Common):
    """Cumulative counters of the view so far (a lost `view_end` costs at most one beat)."""

    watch_ms: Millis | None = Field(default=None, description="time playing, stalls excluded")
    rebuffer_ms: Millis | None = Field(default=None, description="time stalled after first frame")
    rebuffer_count: Count | None = None
    startup_ms: Millis | None = Field(default=None, description="play_request -> first playing")
    network_bytes: Count | None = Field(
        default=None, description="media bytes loaded over the network, cache hits excluded"
    )


class Heartbeat(ViewCounters):
    type: Literal["heartbeat"]


class ViewEnd(ViewCounters):
    type: Literal["view_end"]
    reason: Literal["completed", "user_exit", "error", "background"]


class CacheHit(Common):
    type: Literal["cache_hit"]
    bytes: Count


class AppSession(Common):
    """Sentry's session statuses: crashed and abnormal count against crash-free."""

    type: Literal["app_session"]
    status: Literal["ok", "exited", "errored", "crashed", "abnormal"]


class Rating(Common):
    type: Literal["rating"]
    score: Annotated[int, Field(ge=1, le=5)]


class Complaint(Common):
    type: Literal["complaint"]
    kind: Short


class ProcessingFinished(Common):
    """Server only: a video's processing ended, ready or failed with its error code."""

    type: Literal["processing_ready", "processing_failed"]
    error_code: Short | None = None
    duration_ms: Millis | None = None


ClientEvent = (
    Exposure
    | UploadStarted
    | UploadProgress
    | UploadCompleted
    | UploadFailed
    | UploadAbandoned
    | PlayerReady
    | PlayRequest
    | Playing
    | Pause
    | Seeking
    | Seeked
    | RebufferStart
    | RebufferEnd
    | RenditionChange
    | PlaybackError
    | Heartbeat
    | ViewEnd
    | CacheHit
    | AppSession
    | Rating
    | Complaint
)
Event = Annotated[ClientEvent | ProcessingFinished, Field(discriminator="type")]
EVENT = TypeAdapter[Any](Event)
SERVER_ONLY = frozenset({"processing_ready", "processing_failed"})
TYPES = frozenset(
    name
    for model in (*ClientEvent.__args__, ProcessingFinished)
    for name in model.model_fields["type"].annotation.__args__
)


def parse(raw: Any) -> Common:
    """One event from its decoded JSON; raises pydantic's ValidationError."""
    event: Common = EVENT.validate_python(raw)
    return event


def event_time(event: Common, received_at: datetime) -> datetime:
    """When the event counts: the device's time, but never after it reached us (a device clock
    running ahead would put events into minutes that have not happened)."""
    return min(event.client_time, received_at)


def json_schema() -> dict[str, Any]:
    """The JSON Schema (2020-12) of one event, served at /api/v1/telemetry/schema."""
    schema = EVENT.json_schema(mode="validation")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://reelout.dev/schemas/telemetry-event-v{SCHEMA_VERSION}.json",
        "title": f"Reelout telemetry event, version {SCHEMA_VERSION}",
        **schema,
    }
