"""`GET /metrics` (Prometheus text, or OpenMetrics when asked) and `install`: the app's metrics,
their middleware, their route and the listener that counts committed media facts."""

from __future__ import annotations

import hmac
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from prometheus_client.exposition import choose_encoder

from reelout.auth.deps import bearer_token
from reelout.context import Core
from reelout.errors import Unauthorized
from reelout.telemetry.alert_metrics import AlertMetrics
from reelout.telemetry.http_metrics import HttpMetrics
from reelout.telemetry.prometheus import Metrics

router = APIRouter(include_in_schema=False)


def metrics_of(app_state: Any) -> Metrics:
    """The app's metrics (`install` puts them on `app.state.metrics`)."""
    found: Metrics = app_state.metrics
    return found


def _authorize(request: Request, token: str | None) -> None:
    if not token:
        return
    presented = bearer_token(request)
    if presented is None:
        raise Unauthorized(
            "send the metrics token as 'Authorization: Bearer <token>' (REELOUT_METRICS_TOKEN)",
            code="METRICS_TOKEN_REQUIRED",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if not hmac.compare_digest(presented.encode(), token.encode()):
        raise Unauthorized("the metrics token is wrong", code="INVALID_METRICS_TOKEN")


@router.get("/metrics")
def scrape(request: Request) -> Response:
    """The app's metrics in the Prometheus text format, or OpenMetrics when Accept asks for it."""
    metrics = metrics_of(request.app.state)
    _authorize(request, metrics.token)
    encode, content_type = choose_encoder(request.headers.get("accept", ""))
    return Response(encode(metrics.registry), headers={"Content-Type": content_type})


def install(app: FastAPI, rt: Core) -> None:
    """Make the app's metrics (`app.state.metrics`, where domains record into them). With
    REELOUT_METRICS_ENABLED, also time every request, count committed media facts, show the
    alerts (read at scrape time), serve `GET /metrics`, and let OFREP count its evaluations
    (`app.state.flag_evaluations`).
    Add it after every other middleware: it must be the outermost to see every answer."""
    settings = rt.settings
    metrics = app.state.metrics = Metrics(settings)
    if not settings.metrics_enabled:
        return
    app.state.flag_evaluations = metrics.flag_evaluations
    metrics.registry.register(AlertMetrics(rt))
    rt.db.on_commit(metrics.committed)
    app.add_middleware(HttpMetrics, metrics=metrics)
    app.include_router(router)
