"""FastAPI dependencies every domain's routes share: the app's context, typed as narrowly as used."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Header, Request

from reelout.context import Core, Signing


def app_context(request: Request) -> Any:
    """What `create_app` put on the app's state (its `Runtime`); the `...Dep` aliases name which
    part of it a route may use."""
    return request.app.state.runtime


CoreDep = Annotated[Core, Depends(app_context)]
SigningDep = Annotated[Signing, Depends(app_context)]
# Why a change is made, kept in the audit trail (keys, webhooks, videos; flags have their own).
ChangeReason = Annotated[
    str | None, Header(alias="Reelout-Change-Reason", description="Why; kept in the audit trail.")
]
