"""Keys that name an environment (client and server keys): who a flag or telemetry reader is."""

from __future__ import annotations

from fastapi import Request
from sqlalchemy.orm import Session

from reelout.auth import service as auth
from reelout.auth.deps import bearer_token
from reelout.auth.schemas import Scope
from reelout.auth.service import Principal
from reelout.errors import Forbidden, Unauthorized

READERS = frozenset({Scope.client, Scope.server})


def presented_key(request: Request) -> str | None:
    """The key sent as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'."""
    return bearer_token(request) or request.headers.get("x-api-key")


def missing_key() -> Unauthorized:
    return Unauthorized(
        "send a client key as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'",
        code="MISSING_KEY",
        headers={"WWW-Authenticate": "Bearer"},
    )


def environment_key(
    session: Session, request: Request, allowed: frozenset[Scope] = READERS
) -> Principal:
    """The caller's key, which names the environment it reads; 401 without a valid key, 403 for
    a key of another kind."""
    token = presented_key(request)
    if not token:
        raise missing_key()
    return environment_principal(auth.authenticate(session, token), allowed)


def environment_principal(who: Principal, allowed: frozenset[Scope] = READERS) -> Principal:
    if who.scope in allowed and who.environment is not None:
        return who
    if allowed == {Scope.server}:
        raise Forbidden(
            "reading a whole flag set takes a server key of its environment "
            "(reelout keys create --scope server --env <environment>)",
            code="SERVER_KEY_REQUIRED",
        )
    raise Forbidden(
        "flag evaluation and telemetry take a client key: it names the environment",
        code="CLIENT_KEY_REQUIRED",
    )
