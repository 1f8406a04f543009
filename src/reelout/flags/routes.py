"""install(app, rt): the flags domain in the web app: its routers, its app state, its start and stop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from functools import partial

from fastapi import FastAPI

from reelout.bodylimit import Limit
from reelout.config import Settings
from reelout.context import Core
from reelout.db import notify
from reelout.flags.admin.changes import ChangeFeed
from reelout.flags.admin.routes import router as flags_router
from reelout.flags.admin.writes import FlagWrites
from reelout.flags.exposures.routes import BYTES_PER_EXPOSURE
from reelout.flags.exposures.routes import router as exposures_router
from reelout.flags.exposures.service import ExposureRecorder
from reelout.flags.governance.routes import router as governance_router
from reelout.flags.serving.cache import ServingCache, read_changes
from reelout.flags.serving.ofrep_routes import router as ofrep_router
from reelout.flags.serving.sync_routes import router as sync_router

ROUTERS = (
    ofrep_router,
    sync_router,
    governance_router,  # before flags_router: /flags/stale is not a flag key
    flags_router,
    exposures_router,
)


def body_rules(settings: Settings) -> tuple[tuple[str, Limit | None], ...]:
    """BodyLimits' rules for flags: exposure batches and flag sets take larger bodies."""
    return (
        (
            "/api/v1/exposures",
            Limit(
                settings.exposure_max_batch * BYTES_PER_EXPOSURE,
                "REELOUT_EXPOSURE_MAX_BATCH",
                "EXPOSURE_BATCH_TOO_LARGE",
            ),
        ),
        (
            "/api/v1/environments/",
            Limit(settings.flag_set_max_bytes, "REELOUT_FLAG_SET_MAX_BYTES", "FLAG_SET_TOO_LARGE"),
        ),
    )


def install(app: FastAPI, rt: Core) -> Callable[[], AbstractAsyncContextManager[None]]:
    """Mount the flag routers and put the flags' state on `app.state` (exposure recorder, serving
    cache, change feed, who hears this process's flag-set writes); returns what the app's
    lifespan enters to run them (and stop them)."""
    settings = rt.settings
    app.state.exposures = ExposureRecorder(rt.db, rt.clock, settings)
    app.state.serving = ServingCache(settings.flag_change_poll_seconds)
    app.state.keys = app.state.serving.keys  # telemetry's ingest trusts the same keys
    app.state.change_feed = ChangeFeed()
    # a write committed in this process: its answers and its streams move at once
    app.state.flag_writes = FlagWrites(app.state.serving.forget, app.state.change_feed.poke)
    for router in ROUTERS:
        app.include_router(router)

    @asynccontextmanager
    async def running() -> AsyncIterator[None]:
        feed, serving, flag_writes = app.state.change_feed, app.state.serving, app.state.flag_writes
        stop_hearing = flag_writes.attach(rt.db)
        watcher = asyncio.create_task(
            feed.watch(partial(read_changes, rt.db, serving), settings.flag_change_poll_seconds)
        )
        listener = _listener(rt, feed)
        await app.state.exposures.start()
        try:
            yield
        finally:
            await app.state.exposures.stop()  # writes what is still queued
            if listener is not None:
                listener.stop()
            stop_hearing()
            feed.close()
            watcher.cancel()

    return running


def _listener(rt: Core, feed: ChangeFeed) -> notify.Listener | None:
    """On PostgreSQL (unless REELOUT_FLAG_CHANGE_NOTIFY is off): a change committed by any host
    or the CLI pokes this process's watch at once; the poll stays, for what a lost connection
    missed."""
    if rt.db.is_sqlite or not rt.settings.flag_change_notify:
        return None
    listener = notify.Listener(rt.db.url, notify.CHANGES, lambda _payload: feed.poke())
    listener.start()
    return listener
