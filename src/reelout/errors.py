"""The error hierarchy: every failure a user meets has an HTTP status, a stable code and a message."""

from __future__ import annotations

from typing import Any


class ReeloutError(Exception):
    """Base class: `code` is stable and machine-readable; `message` is for a person."""

    status: int = 500
    code: str = "INTERNAL"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        headers: dict[str, str] | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.headers = headers or {}
        self.details = details or {}

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            out["details"] = self.details
        return out


class BadRequest(ReeloutError):
    status = 400
    code = "BAD_REQUEST"


class Unauthorized(ReeloutError):
    status = 401
    code = "UNAUTHORIZED"


class Forbidden(ReeloutError):
    status = 403
    code = "FORBIDDEN"


class NotFound(ReeloutError):
    status = 404
    code = "NOT_FOUND"


class Conflict(ReeloutError):
    status = 409
    code = "CONFLICT"


class Gone(ReeloutError):
    status = 410
    code = "GONE"


class PreconditionFailed(ReeloutError):
    status = 412
    code = "PRECONDITION_FAILED"


class PayloadTooLarge(ReeloutError):
    status = 413
    code = "PAYLOAD_TOO_LARGE"


class UnsupportedMediaType(ReeloutError):
    status = 415
    code = "UNSUPPORTED_MEDIA_TYPE"


class Locked(ReeloutError):
    status = 423
    code = "LOCKED"


class TooManyRequests(ReeloutError):
    status = 429
    code = "RATE_LIMITED"


class InsufficientStorage(ReeloutError):
    status = 507
    code = "INSUFFICIENT_STORAGE"


class ServiceUnavailable(ReeloutError):
    status = 503
    code = "UNAVAILABLE"


class StorageFailed(OSError):
    """Object storage refused or failed a call (unreachable, denied, throttled past the
    retries); what it had stored before still stands. Answered 503 `STORAGE_UNAVAILABLE`."""
