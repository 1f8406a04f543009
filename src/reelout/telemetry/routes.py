"""HTTP routes of telemetry: the ingest (client key; JSON, NDJSON, text/plain for sendBeacon,
gzip), the event model's JSON Schema, and the KPIs per cohort (admin)."""

from __future__ import annotations

import zlib
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from reelout.auth import service as auth
from reelout.auth.deps import AdminDep
from reelout.auth.environment_keys import environment_principal, missing_key, presented_key
from reelout.auth.key_cache import key_cache
from reelout.context import Core
from reelout.deps import CoreDep
from reelout.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from reelout.limits import public_limits
from reelout.telemetry import events, service
from reelout.telemetry import kpis as kpis_service
from reelout.telemetry.batches import items
from reelout.telemetry.metrics import CATALOGUE, SEED_KPIS
from reelout.telemetry.metrics_routes import metrics_of
from reelout.telemetry.writer import ingest_writer

PREFIX = "/api/v1/telemetry"
router = APIRouter(prefix=PREFIX, tags=["telemetry"])
kpi_router = APIRouter(prefix="/api/v1/kpis", tags=["telemetry"])
_NDJSON = ("application/x-ndjson", "application/ndjson", "application/jsonl")
_JSON = ("application/json", "text/plain", "")  # text/plain: what navigator.sendBeacon sends


@router.get("/schema", summary="The telemetry event model as JSON Schema")
def event_schema() -> dict[str, Any]:
    return events.json_schema()


@router.post("/events", summary="Report telemetry events (client key)")
async def report_events(request: Request) -> JSONResponse:
    rt: Core = request.app.state.runtime
    environment, key_id = await _reporter(rt, request)
    advice = "send fewer, larger batches (up to REELOUT_TELEMETRY_MAX_BATCH_EVENTS events)"
    public_limits(request.app.state).check(request, key_id, advice, budget="telemetry")
    ndjson = _is_ndjson(request.headers.get("content-type", ""))
    body = _decoded(await _body(request, rt.settings.telemetry_max_body_bytes), request, rt)
    prepared = service.prepare(rt, items(body, ndjson))  # CPU only, so on the event loop
    writer = ingest_writer(request.app.state)
    new = await writer.store(prepared.to(environment))
    outcome = prepared.outcome(new)
    if rt.settings.metrics_enabled:
        counted = metrics_of(request.app.state)
        for name, by_type in outcome.types.items():
            counted.events_ingested(name, by_type)  # type: ignore[arg-type]
    return JSONResponse(outcome.body())


async def _reporter(rt: Core, request: Request) -> tuple[str, str]:
    """The key's environment and id (from the process's key cache, else the database); the key
    may come as `?key=` too, since sendBeacon cannot set headers (a client key is public: it
    ships inside every app)."""
    token = presented_key(request) or request.query_params.get("key")
    if not token:
        raise missing_key()
    keys = key_cache(request.app.state)
    who = keys.known(token)
    if who is None:
        who = await run_in_threadpool(_authenticate, rt, token)
        keys.remember(token, who)
    who = environment_principal(who)
    assert who.environment is not None  # an environment key names one
    return who.environment, who.key_id


def _authenticate(rt: Core, token: str) -> auth.Principal:
    with rt.db.read() as session:
        return auth.authenticate(session, token)


def _is_ndjson(content_type: str) -> bool:
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind in _NDJSON:
        return True
    if kind in _JSON:
        return False
    raise UnsupportedMediaType(
        f"a batch is application/json, application/x-ndjson or text/plain, not {kind!r}",
        code="UNSUPPORTED_MEDIA_TYPE",
    )


async def _body(request: Request, max_bytes: int) -> bytes:
    """The body as sent, refused past `max_bytes` before more is read."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(max_bytes, "REELOUT_TELEMETRY_MAX_BODY_BYTES")
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_bytes:
                raise _too_large(max_bytes, "REELOUT_TELEMETRY_MAX_BODY_BYTES")
            chunks.append(chunk)
    except ClientDisconnect:
        raise BadRequest("the client went away mid-body", code="INCOMPLETE_BODY") from None
    return b"".join(chunks)


def _decoded(body: bytes, request: Request, rt: Core) -> bytes:
    """The body without its Content-Encoding (identity or gzip), at most
    REELOUT_TELEMETRY_MAX_DECODED_BYTES once inflated: a small bomb stays small."""
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding in ("identity", ""):
        return body
    if encoding != "gzip":
        raise UnsupportedMediaType(
            f"Content-Encoding {encoding!r} is not accepted; send gzip or no encoding",
            code="UNSUPPORTED_ENCODING",
        )
    limit = rt.settings.telemetry_max_decoded_bytes
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        decoded = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise BadRequest(f"the gzip body is corrupt ({exc})", code="INVALID_GZIP") from exc
    if len(decoded) > limit:
        raise _too_large(limit, "REELOUT_TELEMETRY_MAX_DECODED_BYTES")
    if not inflater.eof:
        raise BadRequest("the gzip body is cut short", code="INVALID_GZIP")
    return decoded


def _too_large(limit: int, setting: str) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"the batch is over {limit} bytes ({setting}); send smaller batches",
        code="BODY_TOO_LARGE",
        headers={"Connection": "close"},
    )


@kpi_router.get("", summary="The seed's KPI table for a flag's arms (or everyone)")
def kpis(
    request: Request,
    rt: CoreDep,
    _: AdminDep,
    environment: Annotated[str, Query(description="The environment whose telemetry to read.")],
    flag: Annotated[str | None, Query(description="Compare this flag's arms.")] = None,
    window: Annotated[str, Query(description="How far back: 15m, 6h, 7d.")] = "24h",
    control: Annotated[
        str | None, Query(description="The control variant (default: see `treatment`).")
    ] = None,
    treatment: Annotated[
        str | None,
        Query(
            description="The treatment variant. With neither given, the arms of the flag's "
            "rollout that ran in the window (under the keys it served them as), else the "
            "variant named like a control against the first other one (never `~excluded`)."
        ),
    ] = None,
    metric: Annotated[
        list[str] | None, Query(description="Metrics to show (default: the seed's six).")
    ] = None,
    until: Annotated[datetime | None, Query(description="The window's end (default: now).")] = None,
) -> dict[str, Any]:
    names = kpis_service.known(metric) if metric else list(SEED_KPIS)
    end = until.replace(tzinfo=until.tzinfo or UTC) if until else None
    window_ = kpis_service.parse_window(window)
    # with no arm asked for, a rollout's (the app gives the rollouts' finder: `kpis` docstring)
    find_arms: kpis_service.ArmsFinder | None = getattr(request.app.state, "kpi_arms", None)
    table = kpis_service.kpi_table(
        rt, environment, window_, flag, control, treatment, names, end, find_arms
    )
    return kpis_service.table_body(table)


@kpi_router.get("/metrics", summary="The metric catalogue: every metric's definition")
def metric_catalogue(_: AdminDep) -> dict[str, Any]:
    return {"metrics": [kpis_service.definition(metric) for metric in CATALOGUE]}


@kpi_router.get("/series", summary="One metric per arm over time (for charts)")
def kpi_series(
    rt: CoreDep,
    _: AdminDep,
    environment: Annotated[str, Query()],
    metric: Annotated[str, Query()],
    flag: Annotated[str | None, Query()] = None,
    window: Annotated[str, Query()] = "24h",
    step: Annotated[str, Query(description="Bucket width: 1m, 15m, 1h.")] = "1h",
) -> dict[str, Any]:
    (name,) = kpis_service.known([metric])
    found = kpis_service.series(
        rt,
        environment,
        name,
        flag,
        kpis_service.parse_window(window),
        kpis_service.parse_window(step),
    )
    return {
        "metric": name,
        "series": {
            variant: [{"at": at.isoformat(), "value": value} for at, value in points]
            for variant, points in found.items()
        },
    }
