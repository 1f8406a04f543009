"""create_app(settings) -> FastAPI: wires the runtime, error handling, CORS and every domain's router."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.types import Receive, Scope, Send

from reelout import __version__, logs
from reelout.alerts import defaults as alert_defaults
from reelout.alerts.routes import router as alerts_router
from reelout.audit.routes import router as audit_router
from reelout.audit.service import own_changes
from reelout.auth.deps import admin
from reelout.auth.routes import router as keys_router
from reelout.bodylimit import BodyLimits, Limit, error_response
from reelout.clock import Clock
from reelout.config import Settings
from reelout.errors import ReeloutError, ServiceUnavailable, StorageFailed
from reelout.flags import routes as flags
from reelout.flags.admin import service as flag_admin
from reelout.flags.admin.audit_source import flag_changes
from reelout.health import DatabaseProbe, StoreChecks, database_reasons
from reelout.jobs.worker import EmbeddedWorker
from reelout.limits import PublicLimits
from reelout.media.jobs import tools as media_tools
from reelout.media.playback_routes import PREFIX as MEDIA_PREFIX
from reelout.media.playback_routes import router as playback_router
from reelout.media.routes import router as videos_router
from reelout.rollouts.alerting import with_rollbacks
from reelout.rollouts.kpi_arms import rollout_arms
from reelout.rollouts.metrics import RolloutMetrics
from reelout.rollouts.routes import router as rollouts_router
from reelout.runtime import Runtime
from reelout.startup import prepare
from reelout.tasks import build_registry
from reelout.telemetry import metrics_routes, multiprocess
from reelout.telemetry.routes import PREFIX as TELEMETRY_PREFIX
from reelout.telemetry.routes import kpi_router
from reelout.telemetry.routes import router as telemetry_router
from reelout.telemetry.writer import IngestWriter
from reelout.uploads import tus
from reelout.uploads.order_routes import router as orders_router
from reelout.uploads.pglocks import listening as upload_locks_listening
from reelout.uploads.routes import PREFIX as TUS_PREFIX
from reelout.uploads.routes import MethodOverrideMiddleware
from reelout.uploads.routes import router as tus_router
from reelout.uploads.space import low_disk
from reelout.web.routes import install as install_console
from reelout.web.sdk import PREFIX as SDK_PREFIX
from reelout.webhooks.routes import router as webhooks_router

log = logging.getLogger("reelout")


async def _reelout_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ReeloutError)
    return error_response(exc)


async def _storage_failed(_: Request, exc: Exception) -> JSONResponse:
    log.error("object storage failed: %s", exc)
    unavailable = ServiceUnavailable(
        "the server's storage is unavailable; try again shortly", code="STORAGE_UNAVAILABLE"
    )
    return error_response(unavailable)


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


# Paths that answer CORS themselves: published media (per video), the browser SDK (any origin).
OWN_CORS = (MEDIA_PREFIX + "/", SDK_PREFIX + "/")


class ApiCorsMiddleware(CORSMiddleware):
    """CORS from REELOUT_CORS_ORIGINS for the API; media and the SDK answer their own."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(OWN_CORS):
            await self.app(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


# Where GET /api/v1/audit/all (and the console's Audit page) reads changes from.
AUDIT_SOURCES = (own_changes, flag_changes)


def body_rules(settings: Settings) -> tuple[tuple[str, Limit | None], ...]:
    """BodyLimits' rules: uploads stream under their own limits; the flag admin and exposure
    batches take larger bodies; every other body is small JSON (or a console form)."""
    return (
        (TUS_PREFIX, None),
        ("/api/v1/orders/", None),
        (TELEMETRY_PREFIX, None),  # gzip and NDJSON: the ingest reads under its own limits
        *flags.body_rules(settings),
    )


def create_worker_app() -> FastAPI:
    """The app of one of `serve --workers N`'s processes, which start with logging unset."""
    settings = Settings()
    logs.configure(settings.log_level, settings.log_format)
    return create_app(settings)


def create_app(settings: Settings | None = None, clock: Clock | None = None) -> FastAPI:
    settings = settings or Settings()
    rt = Runtime.from_settings(settings, clock)
    rt.alert_signals = with_rollbacks(rt, rt.alert_signals)  # the rollback alert's signal

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        prepare(rt, flag_admin.seed_on_start, alert_defaults.seed_on_start)
        log.info("storage: %s; upload locks: %s", rt.storage_description, type(rt.locker).__name__)
        worker = EmbeddedWorker(rt, build_registry()) if settings.embedded_worker else None
        if worker:
            await run_in_threadpool(media_tools, settings.ffmpeg, settings.ffprobe)  # logs them
            await worker.start()
        # Start-up's objects (app, models, schemas) are moved out of the collector's reach, so
        # a full collection under load scans only what requests made (~10 ms, not ~100 ms).
        gc.collect()
        gc.freeze()
        app.state.telemetry_writer.start()
        try:
            async with flags_running(), upload_locks_listening(rt.locker):
                yield
        finally:
            await run_in_threadpool(app.state.telemetry_writer.stop)
            if worker:
                await worker.stop()
            database.close()
            rt.db.dispose()
            multiprocess.process_exiting()

    database = DatabaseProbe(rt.db, settings.readyz_timeout_seconds)  # /readyz's checks
    stores = StoreChecks(settings.readyz_timeout_seconds)
    app = FastAPI(title="Reelout", version=__version__, lifespan=lifespan)
    app.state.runtime = rt
    app.state.limits = PublicLimits(settings, rt.clock)
    app.add_exception_handler(ReeloutError, _reelout_error)
    app.add_exception_handler(StorageFailed, _storage_failed)
    if settings.storage_url:  # the media store raises the S3 client's own errors too
        from botocore.exceptions import BotoCoreError, ClientError  # only a fleet loads boto

        app.add_exception_handler(ClientError, _storage_failed)
        app.add_exception_handler(BotoCoreError, _storage_failed)
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
    app.include_router(keys_router)
    # Starlette tries routes in order: the hottest path (OFREP, from every app) comes first
    flags_running = flags.install(app, rt)
    app.state.telemetry_writer = IngestWriter(rt.db)
    # after every other middleware (it times them all), and /metrics behind OFREP
    metrics_routes.install(app, rt)
    if settings.metrics_enabled:  # the rollouts, read at scrape time like the alerts
        app.state.metrics.registry.register(RolloutMetrics(rt))
    routers = (telemetry_router, videos_router, orders_router, tus_router, playback_router)
    for router in (*routers, webhooks_router, alerts_router, kpi_router, rollouts_router):
        app.include_router(router)
    app.state.kpi_arms = rollout_arms  # GET /api/v1/kpis's default arms: a rollout's
    # every change, from the audit trail and the flag audit log; admin keys only
    app.state.audit_sources = AUDIT_SOURCES
    app.include_router(audit_router, dependencies=[Depends(admin)])
    install_console(app, rt)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, object]:
        # the server's time and clock speed: what `reelout simulate` stamps its events with
        now, speed = rt.clock.now().isoformat(), rt.settings.clock_speed
        return {"status": "ok", "version": __version__, "time": now, "clock_speed": speed}

    @app.get("/readyz", include_in_schema=False)
    def readyz() -> JSONResponse:
        """Ready for traffic: the database answers, the stores answer, the disk keeps its
        reserve; else 503 with a reason for each part that does not (a thread: it waits)."""
        data = settings.data_dir
        # one bucket holds both stores on object storage: ask it once
        checked_stores: dict[str, object] = (
            {"bucket": rt.bucket}
            if settings.storage_url
            else {"uploads": rt.upload_store, "media": rt.media_store}
        )
        # the local folders in use: on object storage only the scratch space of encodes
        local = [data / "scratch"] if settings.storage_url else [data / "uploads", data / "media"]
        reasons = [
            *database_reasons(database),
            *stores.reasons(checked_stores),
            *low_disk(local, settings.disk_reserve_bytes),
        ]
        if reasons:
            return JSONResponse({"status": "not_ready", "reasons": reasons}, status_code=503)
        return JSONResponse({"status": "ready", "version": __version__})

    return app
