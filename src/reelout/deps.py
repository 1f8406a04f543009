"""FastAPI dependencies every domain's routes share: the runtime the app was made with."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from reelout.runtime import Runtime


def runtime(request: Request) -> Runtime:
    """The app's runtime (settings, database, clock, stores), set by `create_app`."""
    rt: Runtime = request.app.state.runtime
    return rt


RuntimeDep = Annotated[Runtime, Depends(runtime)]
