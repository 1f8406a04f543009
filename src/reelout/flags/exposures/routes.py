"""HTTP routes of the exposure log: distinct users per variant per day (admin), and the batches
of exposures that in-process SDKs report (client key)."""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from reelout.auth.deps import AdminDep
from reelout.auth.environment_keys import environment_key
from reelout.context import Core
from reelout.deps import CoreDep
from reelout.errors import BadRequest, PayloadTooLarge, ReeloutError
from reelout.flags.admin import service
from reelout.flags.exposures import service as exposures
from reelout.flags.exposures.service import MAX_KEY_CHARS
from reelout.limits import public_limits

router = APIRouter(prefix="/api/v1", tags=["flags"])
DEFAULT_DAYS = 30  # the counts' range when `since` is not given: the 30 days up to `until`
BYTES_PER_EXPOSURE = 1024  # a batch body may take this much per allowed exposure


class ExposureIn(BaseModel):
    """One exposure an SDK reports: a targeting key saw this variant of this flag."""

    model_config = ConfigDict(populate_by_name=True)

    flag: str = Field(min_length=1, max_length=MAX_KEY_CHARS)
    variant: str = Field(min_length=1, max_length=MAX_KEY_CHARS)
    targeting_key: str = Field(alias="targetingKey", min_length=1, max_length=MAX_KEY_CHARS)


class ExposureBatch(BaseModel):
    exposures: list[ExposureIn]


class InvalidExposures(ReeloutError):
    status = 422
    code = "INVALID_EXPOSURES"


@router.get("/environments/{env}/exposures", summary="Distinct users per variant per day")
def exposure_counts(
    env: str,
    rt: CoreDep,
    _: AdminDep,
    flag: Annotated[str, Query(min_length=1, description="The flag's key.")],
    since: Annotated[
        date | None, Query(description="First UTC day (default: 30 days back).")
    ] = None,
    until: Annotated[date | None, Query(description="Last UTC day (default: today).")] = None,
) -> dict[str, Any]:
    environment = service.check_environment(env, rt.settings.environments)
    last = until or exposures.utc_day(rt.clock.now())
    first = since or last - timedelta(days=DEFAULT_DAYS - 1)
    if first > last:
        raise BadRequest(
            f"since ({first}) is after until ({last}): give since <= until", code="INVALID_RANGE"
        )
    with rt.db.read() as session:
        days = exposures.variant_counts(session, environment, flag, first, last)
    return {
        "environment": environment,
        "flag": flag,
        "since": first.isoformat(),
        "until": last.isoformat(),
        "days": [{"day": d.day.isoformat(), "variants": d.variants} for d in days],
    }


def _reporter(rt: Core, request: Request) -> tuple[str, str]:
    """The reporting key's environment and id."""
    with rt.db.read() as session:
        who = environment_key(session, request)
    assert who.environment is not None  # an environment key names one
    return service.check_environment(who.environment, rt.settings.environments), who.key_id


def _batch(raw: bytes, max_batch: int) -> list[ExposureIn]:
    """The exposures of a body: 400 for no JSON, 413 past the batch size, 422 for a bad shape."""
    try:
        document = json.loads(raw)
    except ValueError as exc:
        raise BadRequest(
            f'the body is not JSON ({exc}); send {{"exposures": [...]}}', code="INVALID_JSON"
        ) from exc
    items = document.get("exposures") if isinstance(document, dict) else None
    if isinstance(items, list) and len(items) > max_batch:
        raise PayloadTooLarge(
            f"the batch has {len(items)} exposures; send at most {max_batch} a batch "
            "(REELOUT_EXPOSURE_MAX_BATCH)",
            code="EXPOSURE_BATCH_TOO_LARGE",
        )
    try:
        return ExposureBatch.model_validate(document).exposures
    except ValidationError as exc:
        errors = [{"loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors()]
        raise InvalidExposures(
            'the body must be {"exposures": [{"flag": "...", "variant": "...", '
            f'"targetingKey": "..."}}, ...]}} (each at most {MAX_KEY_CHARS} characters)',
            details={"errors": errors},
        ) from exc


@router.post("/exposures", status_code=202, summary="Report exposures (in-process SDKs)")
async def report_exposures(request: Request) -> JSONResponse:
    rt: Core = request.app.state.runtime
    environment, key_id = await run_in_threadpool(_reporter, rt, request)
    public_limits(request.app.state).check(request, key_id)
    # flags.routes.body_rules caps the body at REELOUT_EXPOSURE_MAX_BATCH * BYTES_PER_EXPOSURE
    batch = _batch(await request.body(), rt.settings.exposure_max_batch)
    seen = [(e.flag, e.targeting_key, e.variant) for e in batch]
    dropped = exposures.recorder(request.app.state).record(environment, seen)
    return JSONResponse({"received": len(batch), "dropped": dropped}, status_code=202)
