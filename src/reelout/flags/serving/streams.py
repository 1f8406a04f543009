"""OFREP change streams: the signed stream URL a bulk answer names (browsers' EventSource cannot
send headers, so the URL carries a token naming the key) and the events sent on it."""

from __future__ import annotations

import functools
import json
from typing import Any

from fastapi import Request
from itsdangerous import BadSignature, Signer
from sqlalchemy.orm import Session
from sse_starlette import ServerSentEvent

from reelout.auth import service as auth
from reelout.auth.environment_keys import environment_principal
from reelout.auth.service import Principal
from reelout.context import Signing
from reelout.errors import Unauthorized
from reelout.flags.admin.changes import Head

EVENTS_PATH = "/ofrep/v1/events"


@functools.lru_cache(maxsize=8)
def _signer(secret: str) -> Signer:
    return Signer(secret, salt="reelout.ofrep.events")


@functools.lru_cache(maxsize=4096)
def _signed(secret: str, key_id: str, stamp: int) -> str:
    return _signer(secret).sign(f"{key_id}.{stamp}").decode()


def _step(rt: Signing) -> int:
    """Tokens are renewed every half life, so one always has half its life left when given."""
    return max(1, rt.settings.ofrep_stream_token_seconds // 2)


def token_period(rt: Signing) -> int:
    """The current renewal period: the bulk answer's ETag names it, so a client revalidating
    after a renewal gets a 200 carrying a fresh stream URL instead of a 304."""
    return int(rt.clock.now().timestamp()) // _step(rt)


def stream_token(rt: Signing, key_id: str, period: int | None = None) -> str:
    """Names the key (by id, never its secret) and when it was made; checked against the key on
    every connect (so revoking the key closes the door) and refused once older than
    REELOUT_OFREP_STREAM_TOKEN_SECONDS. Made once per key and renewal period."""
    period = token_period(rt) if period is None else period
    return _signed(rt.secret, key_id, period * _step(rt))


def key_of_token(rt: Signing, session: Session, token: str) -> Principal:
    """The key a stream token names: 401 INVALID_STREAM_TOKEN for a forged one, 401
    STREAM_TOKEN_EXPIRED past its life (the client fetches the bulk evaluation again)."""
    try:
        key_id, _, stamp = _signer(rt.secret).unsign(token).decode().rpartition(".")
    except BadSignature:
        raise Unauthorized(
            "the event stream token is not valid; fetch the flags again for a fresh stream URL",
            code="INVALID_STREAM_TOKEN",
        ) from None
    life = rt.settings.ofrep_stream_token_seconds
    if not stamp.isdigit() or rt.clock.now().timestamp() > int(stamp) + life:
        raise Unauthorized(
            f"the event stream token is older than {life} s (REELOUT_OFREP_STREAM_TOKEN_SECONDS); "
            "fetch the bulk evaluation again: its eventStreams URL carries a fresh token",
            code="STREAM_TOKEN_EXPIRED",
        )
    return environment_principal(auth.principal_by_id(session, key_id))


def event_streams(
    rt: Signing, request: Request, key_id: str, revision: int, period: int | None = None
) -> list[dict[str, Any]]:
    """The bulk answer's `eventStreams`: an SSE URL on this server's origin, from `revision` on."""
    if not rt.settings.ofrep_streams:
        return []
    root = request.scope.get("root_path", "")
    token = stream_token(rt, key_id, period)
    uri = f"{root}{EVENTS_PATH}?since={revision}&token={token}"
    return [
        {
            "type": "sse",
            "endpoint": {"requestUri": uri},
            "inactivityDelaySec": rt.settings.ofrep_stream_inactivity_seconds,
        }
    ]


def change_event(head: Head) -> ServerSentEvent:
    """OFREP's refetchEvaluation, with the flag configuration's tag and time of change."""
    data = {
        "type": "refetchEvaluation",
        "etag": head.tag,
        "lastModified": int(head.changed_at.timestamp()),
    }
    return ServerSentEvent(json.dumps(data, separators=(",", ":")), id=head.tag)


def seen_revision(environment: str, since: int | None, last_event_id: str | None, head: int) -> int:
    """The revision the client has: its Last-Event-ID on a reconnect, else the URL's `since`,
    else the head now (a client without either has just fetched)."""
    if last_event_id and last_event_id.startswith(f"{environment}-r"):
        number = last_event_id.removeprefix(f"{environment}-r")
        if number.isdigit():
            return int(number)
    return since if since is not None else head
