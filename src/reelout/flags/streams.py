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
from reelout.auth.service import Principal
from reelout.errors import Unauthorized
from reelout.flags.changes import Head
from reelout.flags.deps import environment_principal
from reelout.runtime import Runtime

EVENTS_PATH = "/ofrep/v1/events"


@functools.lru_cache(maxsize=8)
def _signer(secret: str) -> Signer:
    return Signer(secret, salt="reelout.ofrep.events")


@functools.lru_cache(maxsize=4096)
def _signed(secret: str, key_id: str) -> str:
    return _signer(secret).sign(key_id).decode()


def stream_token(rt: Runtime, key_id: str) -> str:
    """Names the key (by id, never its secret) and is checked against it on every connect, so
    revoking the key closes the door; it does not expire on its own (so it is made once a key)."""
    return _signed(rt.secret, key_id)


def key_of_token(rt: Runtime, session: Session, token: str) -> Principal:
    try:
        key_id = _signer(rt.secret).unsign(token).decode()
    except BadSignature:
        raise Unauthorized(
            "the event stream token is not valid; fetch the flags again for a fresh stream URL",
            code="INVALID_STREAM_TOKEN",
        ) from None
    return environment_principal(auth.principal_by_id(session, key_id))


def event_streams(
    rt: Runtime, request: Request, key_id: str, revision: int
) -> list[dict[str, Any]]:
    """The bulk answer's `eventStreams`: an SSE URL on this server's origin, from `revision` on."""
    if not rt.settings.ofrep_streams:
        return []
    root = request.scope.get("root_path", "")
    uri = f"{root}{EVENTS_PATH}?since={revision}&token={stream_token(rt, key_id)}"
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
