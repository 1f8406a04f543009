"""The shapes the tus service works with: who calls, what they ask to create, where an upload is."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from reelout.uploads import tus


@dataclass(frozen=True)
class Uploader:
    """Who may touch uploads: an admin key, or a creator-upload token bound to one video."""

    admin: bool
    owner: str
    token: str | None = None


@dataclass(frozen=True)
class Credential:
    """The bearer token of a request, resolved to an Uploader by the service."""

    token: str | None


Caller = Uploader | Credential


@dataclass
class UploadState:
    """Where one upload stands: what HEAD and PATCH answers are made of."""

    id: str
    offset: int
    length: int | None
    metadata: tus.Metadata
    expires_at: datetime
    concat: str | None = None
    concat_parts: list[str] = field(default_factory=list)
    video_uid: str | None = None
    owner: str = ""
    max_length: int = 0  # the most bytes the upload may reach while its length is deferred


@dataclass
class CreateRequest:
    """A creation request's headers, parsed: Upload-Length or -Defer-Length, metadata, concat."""

    length: int | None
    defer_length: bool
    metadata: tus.Metadata
    concat: tus.Concat | None
