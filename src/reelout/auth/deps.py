"""FastAPI dependencies that turn a Bearer key, or a console session, into a Principal."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from reelout.auth import service
from reelout.auth.models import ApiKey
from reelout.auth.schemas import Scope
from reelout.auth.service import Principal
from reelout.errors import Forbidden, Unauthorized
from reelout.runtime import Runtime
from reelout.web.session import COOKIE, CSRF_HEADER, SessionCodec


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


def session_principal(rt: Runtime, key_id: str) -> Principal:
    """The admin key a console session was opened with, unless it has been revoked since."""
    with rt.db.read() as session:
        row = session.get(ApiKey, key_id)
    if row is None or row.revoked_at is not None or row.scope != Scope.admin:
        raise Unauthorized(
            "the key this console session was opened with is revoked; log in again",
            code="SESSION_REVOKED",
        )
    return Principal(row.id, row.name, Scope(row.scope), row.environment)


def console_key_id(request: Request) -> str | None:
    """The key id of a console session cookie (CSRF header checked), or None without a cookie."""
    codec: SessionCodec | None = getattr(request.app.state, "console_sessions", None)
    cookie = request.cookies.get(COOKIE)
    if codec is None or cookie is None:
        return None
    return codec.authorize(cookie, request.headers.get(CSRF_HEADER))


async def principal(request: Request) -> Principal:
    """A Bearer key; else the console session cookie together with its X-CSRF-Token header."""
    token = bearer_token(request)
    if token is not None:
        return await run_in_threadpool(_lookup, runtime(request), token)
    key_id = console_key_id(request)
    if key_id is not None:
        return await run_in_threadpool(session_principal, runtime(request), key_id)
    raise Unauthorized(
        "send an API key as 'Authorization: Bearer <key>'",
        code="MISSING_KEY",
        headers={"WWW-Authenticate": "Bearer"},
    )


async def admin(who: Annotated[Principal, Depends(principal)]) -> Principal:
    if not who.is_admin:
        raise Forbidden("this call needs an admin key", code="ADMIN_REQUIRED")
    return who


async def playback_signer(who: Annotated[Principal, Depends(principal)]) -> Principal:
    return service.require_playback_signer(who)


RuntimeDep = Annotated[Runtime, Depends(runtime)]
AdminDep = Annotated[Principal, Depends(admin)]
PrincipalDep = Annotated[Principal, Depends(principal)]
PlaybackSignerDep = Annotated[Principal, Depends(playback_signer)]
