"""OFREP 0.3 shapes (../shared/specs/ofrep-openapi.yaml): evaluation results as the protocol
writes them, and the bulk response's entity tag. Pure."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from reelout.flags.engine.evaluator import ErrorCode, Resolution

# OFREP's evaluationFailure allows only these; anything else is reported as GENERAL.
FAILURE_CODES = {"PARSE_ERROR", "TARGETING_KEY_MISSING", "INVALID_CONTEXT", "GENERAL"}


def is_not_found(resolution: Resolution) -> bool:
    return resolution.error_code is ErrorCode.FLAG_NOT_FOUND


def result(key: str, resolution: Resolution) -> dict[str, Any]:
    """One flag's OFREP answer: evaluationSuccess, evaluationFailure or flagNotFound."""
    if resolution.error_code is not None:
        answer = _failure(key, resolution.error_code, resolution)
    else:  # built in place: a bulk answer makes one per flag
        answer = {"key": key, "reason": resolution.reason.value}
        if resolution.variant is not None:  # no variant: the client's code default applies
            answer["variant"] = resolution.variant
            answer["value"] = resolution.value
    if resolution.flag_metadata:
        answer["metadata"] = dict(resolution.flag_metadata)
    return answer


def _failure(key: str, error: ErrorCode, resolution: Resolution) -> dict[str, Any]:
    code = error.value
    return {
        "key": key,
        "errorCode": code if code in FAILURE_CODES or is_not_found(resolution) else "GENERAL",
        "errorDetails": resolution.error_message or code,
    }


def context_of(body: Any) -> Mapping[str, Any] | None:
    """The evaluation context of a request body, or None when it is not a JSON object."""
    if body is None:
        return {}
    if not isinstance(body, dict):
        return None
    context = body.get("context", {})
    return context if isinstance(context, dict) else None


def bulk_etag(environment: str, revision: int, context: Mapping[str, Any], period: int = 0) -> str:
    """Changes when the flag set or the context does, and when the answer's stream token is
    renewed (`period`, see streams.token_period): the client's cache key for a 304."""
    canonical = json.dumps(context, sort_keys=True, separators=(",", ":"), default=str)
    digest = hashlib.sha256(f"{canonical}\0{period}".encode()).hexdigest()[:20]
    return f'"{environment}-r{revision}-{digest}"'
