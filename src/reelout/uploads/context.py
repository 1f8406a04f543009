"""What the uploads domain needs from its process: the media context, upload store and locker."""

from __future__ import annotations

from typing import Annotated, Protocol

from fastapi import Depends

from reelout.deps import app_context
from reelout.media.context import MediaContext
from reelout.uploads.locks import Locker
from reelout.uploads.store import UploadStore


class UploadsContext(MediaContext, Protocol):
    @property
    def upload_store(self) -> UploadStore: ...

    @property
    def locker(self) -> Locker: ...


UploadsDep = Annotated[UploadsContext, Depends(app_context)]
