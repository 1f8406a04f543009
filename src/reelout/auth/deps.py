"""FastAPI dependencies that turn `Authorization: Bearer <key>` into a Principal."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from reelout.auth import service
from reelout.auth.service import Principal
from reelout.errors import Forbidden, Unauthorized
from reelout.runtime import Runtime


def runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def _lookup(rt: Runtime, token: str) -> Principal:
    with rt.db.read() as session:
        return service.authenticate(session, token)


async def principal(request: Request) -> Principal:
    token = bearer_token(request)
    if token is None:
        raise Unauthorized(
            "send an API key as 'Authorization: Bearer <key>'",
            code="MISSING_KEY",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return await run_in_threadpool(_lookup, runtime(request), token)


async def admin(who: Annotated[Principal, Depends(principal)]) -> Principal:
    if not who.is_admin:
        raise Forbidden("this call needs an admin key", code="ADMIN_REQUIRED")
    return who


RuntimeDep = Annotated[Runtime, Depends(runtime)]
AdminDep = Annotated[Principal, Depends(admin)]
PrincipalDep = Annotated[Principal, Depends(principal)]
