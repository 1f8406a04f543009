"""One delivery attempt over HTTP (httpx): POST, no redirects, a timeout, a short answer excerpt."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import httpx

from reelout.clock import Clock

EXCERPT_BYTES = 1024


@dataclass(frozen=True)
class Request:
    """What one attempt sends: the stored body and freshly signed headers."""

    url: str
    body: bytes
    headers: dict[str, str]


@dataclass(frozen=True)
class AttemptResult:
    """What came of one attempt: a status (if an answer came) or a transport error."""

    started_at: datetime
    duration_ms: int
    status_code: int | None
    error: str | None
    response_excerpt: str | None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def _read_excerpt(response: httpx.Response) -> str:
    data = b""
    try:
        for chunk in response.iter_bytes():
            data += chunk
            if len(data) >= EXCERPT_BYTES:
                break
    except httpx.HTTPError:
        pass  # the status is what counts; a body that stalls or breaks is only not shown
    return data[:EXCERPT_BYTES].decode("utf-8", errors="replace")


def _status_error(response: httpx.Response) -> str | None:
    code = response.status_code
    if 200 <= code < 300:
        return None
    reason = f"HTTP {code} {response.reason_phrase}".rstrip()
    if 300 <= code < 400:
        where = response.headers.get("location", "nowhere")
        return f"{reason}: redirect to {where} not followed (give the final URL)"
    return reason


def _transport_error(exc: Exception, timeout: float) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return f"no answer within {timeout:g} s ({type(exc).__name__})"
    if isinstance(exc, httpx.ConnectError):
        return f"could not connect: {exc}"
    return f"{type(exc).__name__}: {exc}"


def post(request: Request, *, timeout: float, clock: Clock) -> AttemptResult:
    """POST once; never raises for anything the network or the receiver does."""
    started, start = clock.now(), clock.monotonic()
    status: int | None = None
    excerpt: str | None = None
    try:
        with (
            httpx.Client(timeout=timeout, follow_redirects=False) as client,
            client.stream("POST", request.url, content=request.body, headers=request.headers) as r,
        ):
            status, error, excerpt = r.status_code, _status_error(r), _read_excerpt(r)
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        error = _transport_error(exc, timeout)
    duration_ms = max(0, round((clock.monotonic() - start) * 1000))
    return AttemptResult(started, duration_ms, status, error, excerpt or None)
