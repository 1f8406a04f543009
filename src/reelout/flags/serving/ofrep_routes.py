"""OFREP endpoints for apps: `POST /ofrep/v1/evaluate/flags[/{key}]` with a client key, which
names the environment whose flags it reads."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from reelout.auth.environment_keys import environment_key, presented_key
from reelout.auth.service import Principal
from reelout.context import Signing
from reelout.flags.engine.evaluator import resolve
from reelout.flags.exposures import service as exposures
from reelout.flags.serving import ofrep
from reelout.flags.serving.cache import Served, ServingCache, serving_cache
from reelout.flags.serving.streams import event_streams, token_period
from reelout.flags.serving.tally import evaluation_counter
from reelout.limits import public_limits

router = APIRouter(prefix="/ofrep/v1", tags=["ofrep"])


async def _served(rt: Signing, request: Request) -> tuple[Served, str]:
    """The caller's environment's compiled flags and key id: from memory when both were checked
    within REELOUT_FLAG_CHANGE_POLL_SECONDS and the client knows of no newer revision, else read
    (key and revision in one unit of work) in a thread."""
    cache = serving_cache(request.app.state)
    secret = presented_key(request)
    hit = cache.fresh(secret) if secret else None
    if hit is None or _behind(request, hit[0]):
        hit = await run_in_threadpool(_load, rt, request, cache, secret)
    served, who = hit
    return served, who.key_id


def _load(
    rt: Signing, request: Request, cache: ServingCache, secret: str | None
) -> tuple[Served, Principal]:
    with rt.db.read() as session:
        who = environment_key(session, request)
        assert secret is not None
        assert who.environment is not None
        cache.remember(secret, who)
        return cache.load(session, who.environment), who


def _behind(request: Request, served: Served) -> bool:
    """Whether the client names a newer flag configuration (OFREP's `flagConfigEtag`, sent on
    the re-fetch a change event asks for) than this process has in memory."""
    tag = request.query_params.get("flagConfigEtag", "")
    environment, _, revision = tag.rpartition("-r")
    return (
        environment == served.environment and revision.isdigit() and int(revision) > served.revision
    )


async def _context(request: Request) -> dict[str, Any] | None:
    try:
        raw = await request.body()
    except ClientDisconnect:  # the app went away mid-request: nobody to answer, nothing to log
        return None
    try:
        body = json.loads(raw) if raw.strip() else None
    except ValueError:
        return None
    context = ofrep.context_of(body)
    return dict(context) if context is not None else None


def _invalid_context(key: str | None = None) -> JSONResponse:
    failure: dict[str, Any] = {
        "errorCode": "INVALID_CONTEXT",
        "errorDetails": 'the body must be JSON like {"context": {"targetingKey": "user-1", ...}}',
    }
    return JSONResponse(failure | ({"key": key} if key else {}), status_code=400)


@router.post("/evaluate/flags/{key}", summary="Evaluate one flag (OFREP)")
async def evaluate_flag(key: str, request: Request) -> Response:
    rt: Signing = request.app.state.runtime
    served, key_id = await _served(rt, request)
    public_limits(request.app.state).check(request, key_id)
    context = await _context(request)
    if context is None:
        return _invalid_context(key)
    resolution = resolve(served.flags, key, context, rt.clock.now().timestamp())
    resolved = [(key, resolution)]
    exposures.recorder(request.app.state).served(served.environment, context, resolved)
    evaluation_counter(request.app.state).evaluated(served.environment, resolved)
    body = ofrep.result(key, resolution)
    if ofrep.is_not_found(resolution):
        return JSONResponse(body, status_code=404)
    return JSONResponse(body, status_code=400 if "errorCode" in body else 200)


@router.post("/evaluate/flags", summary="Evaluate every flag (OFREP bulk)")
async def evaluate_flags(request: Request) -> Response:
    rt: Signing = request.app.state.runtime
    served, key_id = await _served(rt, request)
    context = await _context(request)
    if context is None:
        return _invalid_context()
    period = token_period(rt) if rt.settings.ofrep_streams else 0
    etag = ofrep.bulk_etag(served.environment, served.revision, context, period)
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers={"ETag": etag})  # free: no rate limit
    public_limits(request.app.state).check(request, key_id)
    now = rt.clock.now().timestamp()
    resolved = [(key, resolve(served.flags, key, context, now)) for key in served.flags.flags]
    exposures.recorder(request.app.state).served(served.environment, context, resolved)
    evaluation_counter(request.app.state).evaluated(served.environment, resolved)
    flags = [ofrep.result(key, resolution) for key, resolution in resolved]
    body: dict[str, Any] = {"flags": flags, "metadata": dict(served.flags.metadata)}
    streams = event_streams(rt, request, key_id, served.revision, period)
    if streams:
        body["eventStreams"] = streams
    return JSONResponse(body, headers={"ETag": etag, "Cache-Control": "no-cache"})
