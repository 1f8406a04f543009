"""What the media domain needs from its process: the core, the media store and the playback key."""

from __future__ import annotations

from typing import Annotated, Protocol

from fastapi import Depends

from reelout.context import Core
from reelout.deps import app_context
from reelout.media.storage import MediaStore


class MediaContext(Core, Protocol):
    @property
    def media_store(self) -> MediaStore: ...

    @property
    def playback_key(self) -> bytes: ...


MediaDep = Annotated[MediaContext, Depends(app_context)]
