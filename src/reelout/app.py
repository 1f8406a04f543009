"""create_app(settings) -> FastAPI: wires the runtime, error handling, CORS and every domain's router."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.types import Receive, Scope, Send

from reelout import __version__, logs
from reelout.auth import service as auth_service
from reelout.auth.routes import router as keys_router
from reelout.bodylimit import BodyLimits, Limit
from reelout.clock import Clock
from reelout.config import Settings
from reelout.db.migrate import upgrade
from reelout.errors import ReeloutError
from reelout.flags.admin import service as flags_service
from reelout.flags.admin.changes import ChangeFeed, Reading
from reelout.flags.admin.routes import router as flags_router
from reelout.flags.exposures.routes import BYTES_PER_EXPOSURE
from reelout.flags.exposures.routes import router as exposures_router
from reelout.flags.exposures.service import ExposureRecorder
from reelout.flags.governance.routes import router as flag_governance_router
from reelout.flags.serving.cache import ServingCache
from reelout.flags.serving.ofrep_routes import router as ofrep_router
from reelout.flags.serving.sync_routes import router as sync_router
from reelout.jobs.worker import EmbeddedWorker
from reelout.limits import PublicLimits
from reelout.media.jobs import tools as media_tools
from reelout.media.playback_routes import PREFIX as MEDIA_PREFIX
from reelout.media.playback_routes import router as playback_router
from reelout.media.routes import router as videos_router
from reelout.runtime import Runtime
from reelout.uploads import tus
from reelout.uploads.order_routes import router as orders_router
from reelout.uploads.routes import PREFIX as TUS_PREFIX
from reelout.uploads.routes import MethodOverrideMiddleware
from reelout.uploads.routes import router as tus_router
from reelout.uploads.space import low_disk
from reelout.web.routes import install as install_console
from reelout.webhooks.routes import router as webhooks_router

log = logging.getLogger("reelout")


def prepare(rt: Runtime) -> None:
    """Migrate the database and make sure an admin key exists (printing a new one once)."""
    upgrade(rt.db)
    settings = rt.settings
    with rt.db.session() as session:
        generated = auth_service.bootstrap_admin(
            session,
            rt.clock,
            token=settings.admin_token,
            key_file=settings.admin_key_file,
            environments=settings.environments,
        )
    if generated:
        print(
            f"Created the first admin key (saved to {settings.admin_key_file}, mode 0600):\n"
            f"  {generated}"
        )


def read_flag_changes(rt: Runtime, serving: ServingCache) -> Reading:
    """What the flag change feed polls: every environment's head revision and the keys revoked
    since the last poll; the OFREP serving cache takes them in before any stream hears of it."""
    read_at = time.monotonic()
    with rt.db.read() as session:
        heads = flags_service.heads(session)
        revocations = auth_service.revocations(session)
        revoked = serving.refresh(session, heads, revocations, read_at)
    return Reading(heads, revoked)


async def _reelout_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ReeloutError)
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    codes = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}
    body = {"code": codes.get(exc.status_code, "HTTP_ERROR"), "message": str(exc.detail)}
    return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [{"loc": list(err.get("loc", ())), "msg": err.get("msg", "")} for err in exc.errors()]
    body = {
        "code": "INVALID_REQUEST",
        "message": "the request does not match the API",
        "details": {"errors": errors},
    }
    return JSONResponse(body, status_code=422)


# Beyond tus: conditional requests (flag sets, OFREP bulk), OFREP's X-API-Key, change reasons,
# the console's CSRF header; and the headers browsers must be allowed to read back.
API_REQUEST_HEADERS = (
    "If-Match",
    "If-None-Match",
    "X-API-Key",
    "Reelout-Change-Reason",
    "X-CSRF-Token",
)
API_EXPOSE_HEADERS = ("ETag", "Retry-After", "Deprecation")


class ApiCorsMiddleware(CORSMiddleware):
    """CORS from REELOUT_CORS_ORIGINS for the API; published media answer CORS per video."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(MEDIA_PREFIX + "/"):
            await self.app(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def body_rules(settings: Settings) -> tuple[tuple[str, Limit | None], ...]:
    """BodyLimits' rules: uploads stream under their own limits; the flag admin and exposure
    batches take larger bodies; every other body is small JSON (or a console form)."""
    return (
        (TUS_PREFIX, None),
        ("/api/v1/orders/", None),
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


def create_worker_app() -> FastAPI:
    """The app of one of `serve --workers N`'s processes, which start with logging unset."""
    settings = Settings()
    logs.configure(settings.log_level, settings.log_format)
    return create_app(settings)


def create_app(settings: Settings | None = None, clock: Clock | None = None) -> FastAPI:
    settings = settings or Settings()
    rt = Runtime.from_settings(settings, clock)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        prepare(rt)
        worker = EmbeddedWorker(rt) if settings.embedded_worker else None
        if worker:
            await run_in_threadpool(media_tools, settings.ffmpeg, settings.ffprobe)  # logs them
            await worker.start()
        # Start-up's objects (app, models, schemas) are moved out of the collector's reach, so
        # a full collection under load scans only what requests made (~10 ms, not ~100 ms).
        gc.collect()
        gc.freeze()
        feed = app.state.change_feed
        # a write committed in this process: its answers and its streams move at once
        listeners = (app.state.serving.forget, feed.poke)
        flags_service.WRITE_LISTENERS.extend(listeners)
        watcher = asyncio.create_task(
            feed.watch(
                partial(read_flag_changes, rt, app.state.serving), settings.flag_change_poll_seconds
            )
        )
        await app.state.exposures.start()
        try:
            yield
        finally:
            await app.state.exposures.stop()  # writes what is still queued
            for listener in listeners:
                flags_service.WRITE_LISTENERS.remove(listener)
            feed.close()
            watcher.cancel()
            if worker:
                await worker.stop()
            rt.db.dispose()

    app = FastAPI(title="Reelout", version=__version__, lifespan=lifespan)
    app.state.runtime = rt
    app.state.exposures = ExposureRecorder(rt.db, rt.clock, settings)
    app.state.serving = ServingCache(settings.flag_change_poll_seconds)
    app.state.change_feed = ChangeFeed()
    app.state.limits = PublicLimits(settings, rt.clock)
    app.add_exception_handler(ReeloutError, _reelout_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_middleware(MethodOverrideMiddleware)
    app.add_middleware(
        BodyLimits,
        default=Limit(settings.json_max_bytes, "REELOUT_JSON_MAX_BYTES"),
        max_depth=settings.json_max_depth,
        rules=body_rules(settings),
    )
    app.add_middleware(
        ApiCorsMiddleware,
        allow_origins=settings.cors_origins,
        allow_methods=["GET", "HEAD", "POST", "PATCH", "PUT", "DELETE", "OPTIONS"],
        allow_headers=[*tus.REQUEST_HEADERS, *API_REQUEST_HEADERS],
        expose_headers=[*tus.EXPOSE_HEADERS, *API_EXPOSE_HEADERS],
        max_age=86400,
    )
    routers = (
        keys_router,
        ofrep_router,
        sync_router,
        videos_router,
        orders_router,
        tus_router,
        playback_router,
        webhooks_router,
        flag_governance_router,  # before flags_router: /flags/stale is not a flag key
        flags_router,
        exposures_router,
    )
    for router in routers:
        app.include_router(router)
    install_console(app, rt)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    @app.get("/readyz", include_in_schema=False)
    def readyz() -> JSONResponse:
        """Ready to take uploads: 503 with the reasons when not (today: a disk below the reserve)."""
        data = settings.data_dir
        reasons = low_disk([data / "uploads", data / "media"], settings.disk_reserve_bytes)
        if reasons:
            return JSONResponse({"status": "not_ready", "reasons": reasons}, status_code=503)
        return JSONResponse({"status": "ready", "version": __version__})

    return app
