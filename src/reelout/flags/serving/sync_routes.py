"""What keeps apps and SDKs current: OFREP change events (`GET /ofrep/v1/events`, SSE per
ofrep-event-streams.yaml) and the sync endpoint (`GET /api/v1/sync/flagset`) in-process SDKs
read whole flag sets from."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.concurrency import run_in_threadpool
from starlette.types import Receive, Send
from starlette.types import Scope as AsgiScope

from reelout.auth.environment_keys import environment_key, presented_key
from reelout.auth.schemas import Scope
from reelout.auth.service import Principal
from reelout.context import Signing
from reelout.errors import ReeloutError, ServiceUnavailable
from reelout.flags.admin import service
from reelout.flags.admin.changes import ChangeFeed, FeedClosed, KeyRevoked
from reelout.flags.serving.streams import EVENTS_PATH, change_event, key_of_token, seen_revision
from reelout.limits import PublicLimits, public_limits
from reelout.ratelimit import Slot, spread

router = APIRouter(tags=["ofrep"])

RECONNECT_MS = 1000  # the `retry:` a dropped client waits before it reconnects


# ---- the change events --------------------------------------------------------------------------


def _feed(request: Request) -> ChangeFeed:
    feed: ChangeFeed = request.app.state.change_feed
    return feed


async def _changes(
    feed: ChangeFeed, slot: Slot, who: Principal, seen: int, limits: PublicLimits
) -> AsyncIterator[ServerSentEvent]:
    environment = who.environment or ""
    per_second = limits.settings.ofrep_refetch_per_second
    try:
        yield ServerSentEvent(comment="reelout flag changes", retry=RECONNECT_MS)
        while True:
            head = await feed.newer_than(environment, seen, who.key_id)
            seen = head.revision
            # every stream hears of a change at once: spread the re-fetches it triggers
            if delay := spread(limits.streams.open, per_second, limits.rng):
                await asyncio.sleep(delay)
            yield change_event(head)
    except FeedClosed:
        return  # shutting down: the client reconnects, to another replica if there is one
    except KeyRevoked:
        return  # the reconnect is refused with 401 INVALID_KEY, and EventSource gives up
    finally:
        slot.release()


class _HeldStream(EventSourceResponse):
    """An event stream that gives its slot back however it ends (also if it never started)."""

    def __init__(self, slot: Slot, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.slot = slot

    async def __call__(self, scope: AsgiScope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.slot.release()


def _stream_reader(rt: Signing, request: Request, token: str | None) -> tuple[Principal, int]:
    with rt.db.read() as session:
        if token and not presented_key(request):
            who = key_of_token(rt, session, token)
        else:
            who = environment_key(session, request)
        assert who.environment is not None
        return who, service.head_revision(session, who.environment)


@router.get(EVENTS_PATH, summary="Flag change events (OFREP SSE)")
async def flag_events(
    request: Request,
    since: Annotated[int | None, Query(ge=0, description="The revision the client has.")] = None,
    token: Annotated[str | None, Query(description="From the bulk answer's eventStreams.")] = None,
    last_event_id: Annotated[str | None, Header()] = None,
) -> Response:
    rt: Signing = request.app.state.runtime
    settings = rt.settings
    if not settings.ofrep_streams:
        raise _streams_off()
    who, head = await run_in_threadpool(_stream_reader, rt, request, token)
    environment = who.environment or ""
    limits = public_limits(request.app.state)
    slot = limits.stream_slot(request, who.key_id)  # checked and taken at once, or 503
    seen = seen_revision(environment, since, last_event_id, head)
    if seen > head:  # the client knows a revision the database no longer has (a restore)
        seen = -1
    return _HeldStream(
        slot,
        _changes(_feed(request), slot, who, seen, limits),
        ping=settings.ofrep_stream_ping_seconds,
        headers={"X-Accel-Buffering": "no"},
    )


def _streams_off() -> ReeloutError:
    return ServiceUnavailable(
        "event streams are off on this server (REELOUT_OFREP_STREAMS=false); poll instead",
        code="STREAMS_OFF",
    )


# ---- sync: whole flag sets for in-process SDKs -----------------------------------------------------


def _flag_set(rt: Signing, request: Request) -> service.StoredFlagSet:
    with rt.db.read() as session:
        who = environment_key(session, request, allowed=frozenset({Scope.server}))
        assert who.environment is not None
        return service.current(session, who.environment)


@router.get("/api/v1/sync/flagset", summary="The server key's whole flag set (in-process SDKs)")
async def sync_flag_set(request: Request) -> Response:
    rt: Signing = request.app.state.runtime
    stored = await run_in_threadpool(_flag_set, rt, request)
    headers = {
        "ETag": stored.etag,
        "Cache-Control": "no-cache",
        "Reelout-Revision": str(stored.revision),
        "Reelout-Environment": stored.environment,
    }
    if request.headers.get("if-none-match") == stored.etag:
        return Response(status_code=304, headers=headers)
    return Response(stored.text, media_type="application/json", headers=headers)
