"""FastAPI dependencies that turn a Bearer key, or a console session, into a Principal."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from reelout.auth import service, sessions
from reelout.auth.service import Principal
from reelout.auth.session_cookies import COOKIE, CSRF_HEADER, ConsoleSession, SessionCodec
from reelout.context import Core
from reelout.deps import app_context
from reelout.errors import Forbidden, Unauthorized


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def _lookup(rt: Core, token: str) -> Principal:
    with rt.db.read() as session:
        return service.authenticate(session, token)


def session_principal(rt: Core, console: ConsoleSession) -> Principal:
    """The admin key of a console session, unless it has been logged out, has expired or its
    key has been revoked since."""
    with rt.db.read() as session:
        return sessions.session_owner(session, console.secret, rt.clock.now())


def console_session(request: Request) -> ConsoleSession | None:
    """The session of a console cookie (CSRF header checked), or None without a cookie."""
    codec: SessionCodec | None = getattr(request.app.state, "console_sessions", None)
    cookie = request.cookies.get(COOKIE)
    if codec is None or cookie is None:
        return None
    return codec.authorize(cookie, request.headers.get(CSRF_HEADER))


async def principal(request: Request) -> Principal:
    """A Bearer key; else the console session cookie together with its X-CSRF-Token header."""
    token = bearer_token(request)
    if token is not None:
        return await run_in_threadpool(_lookup, app_context(request), token)
    console = console_session(request)
    if console is not None:
        return await run_in_threadpool(session_principal, app_context(request), console)
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


AdminDep = Annotated[Principal, Depends(admin)]
PrincipalDep = Annotated[Principal, Depends(principal)]
PlaybackSignerDep = Annotated[Principal, Depends(playback_signer)]
