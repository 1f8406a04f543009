"""One delivery attempt over HTTP: POST through a pinned connection (see pinning), no redirects, a
timeout, and a summary of the answer (status, media type, length); its body only when asked."""

from __future__ import annotations

import re
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from http import HTTPStatus

import httpcore
import httpx

from reelout.clock import Clock
from reelout.config import Settings
from reelout.webhooks.pinning import AddressRefused, Guard, LookupFailed, PinnedBackend

MAX_EXCERPT_BYTES = 4096  # the most REELOUT_WEBHOOK_RESPONSE_EXCERPT_BYTES may keep
COUNT_LIMIT_BYTES = 64 * 1024  # an answer without Content-Length is counted up to this
MAX_LOCATION_CHARS = 200
_MEDIA_TYPE = re.compile(r"[a-z0-9!#$&^_.+-]{1,60}/[a-z0-9!#$&^_.+-]{1,60}")

# The `error_code` of a failed attempt.
HTTP_STATUS = "WEBHOOK_HTTP_STATUS"
REDIRECT = "WEBHOOK_REDIRECT_NOT_FOLLOWED"
TIMEOUT = "WEBHOOK_TIMEOUT"
CONNECT_FAILED = "WEBHOOK_CONNECT_FAILED"
TRANSPORT_ERROR = "WEBHOOK_TRANSPORT_ERROR"
_TRANSPORT_ERRORS = (
    httpcore.TimeoutException,
    httpcore.NetworkError,
    httpcore.ProtocolError,
    httpcore.UnsupportedProtocol,
    httpx.InvalidURL,
    ssl.SSLError,
)


@dataclass(frozen=True)
class Request:
    """What one attempt sends: the stored body and freshly signed headers."""

    url: str
    body: bytes
    headers: dict[str, str]


@dataclass(frozen=True)
class Answer:
    """What is kept of a receiver's answer: nothing it wrote, unless an excerpt was asked for."""

    content_type: str | None = None  # the media type only, e.g. "application/json"
    length: int | None = None  # bytes of the body, when declared or counted to its end
    excerpt: str | None = None


@dataclass(frozen=True)
class AttemptResult:
    """What came of one attempt: a status (if an answer came) or why none did.

    `permanent` failures (an address that is not allowed, a secret that cannot be read) end the
    delivery at once instead of being retried."""

    started_at: datetime
    duration_ms: int
    status_code: int | None
    error: str | None
    error_code: str | None = None
    answer: Answer = Answer()
    permanent: bool = False

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def _header(response: httpcore.Response, name: bytes) -> str | None:
    for key, value in response.headers:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def _media_type(value: str | None) -> str | None:
    media = (value or "").split(";", 1)[0].strip().lower()
    return media if _MEDIA_TYPE.fullmatch(media) else None


def _declared_length(response: httpcore.Response) -> int | None:
    value = (_header(response, b"content-length") or "").strip()
    return int(value) if value.isdigit() and len(value) < 19 else None


def _read(chunks: Iterator[bytes], limit: int) -> tuple[bytes, bool]:
    """Up to `limit` bytes of the body, and whether it ended within them."""
    data = b""
    try:
        for chunk in chunks:
            data += chunk
            if len(data) > limit:
                return data[:limit], False
    except _TRANSPORT_ERRORS:
        return data, False  # the status is what counts; a body that stalls or breaks is not
    return data, True


def _answer(response: httpcore.Response, excerpt_bytes: int) -> Answer:
    declared = _declared_length(response)
    wanted = excerpt_bytes if declared is not None else max(excerpt_bytes, COUNT_LIMIT_BYTES)
    data, ended = _read(response.iter_stream(), wanted) if wanted else (b"", False)
    length = declared if declared is not None else (len(data) if ended else None)
    excerpt = data[:excerpt_bytes].decode("utf-8", errors="replace") if excerpt_bytes else None
    return Answer(_media_type(_header(response, b"content-type")), length, excerpt or None)


def _standard_reason(code: int) -> str:
    try:
        return HTTPStatus(code).phrase
    except ValueError:
        return ""


def _status_error(response: httpcore.Response) -> tuple[str | None, str | None]:
    code = response.status
    if 200 <= code < 300:
        return None, None
    status = f"HTTP {code} {_standard_reason(code)}".rstrip()  # not the receiver's own words
    if 300 <= code < 400:
        where = (_header(response, b"location") or "nowhere")[:MAX_LOCATION_CHARS]
        return f"{status}: redirect to {where} not followed (give the final URL)", REDIRECT
    return status, HTTP_STATUS


def _failure(exc: Exception, timeout: float) -> tuple[str, str, bool]:
    """(error, code, permanent) of an attempt that got no answer."""
    if isinstance(exc, AddressRefused):
        return str(exc), exc.code, True
    if isinstance(exc, LookupFailed):
        return str(exc), exc.code, False
    if isinstance(exc, httpcore.TimeoutException):
        return f"no answer within {timeout:g} s ({type(exc).__name__})", TIMEOUT, False
    if isinstance(exc, httpcore.ConnectError):
        return f"could not connect: {exc}", CONNECT_FAILED, False
    return f"{type(exc).__name__}: {exc}", TRANSPORT_ERROR, False


def _target(url: str) -> tuple[httpcore.URL, bytes]:
    """The URL for httpcore and its Host header (httpx's parser: IDNA names, `[v6]` literals)."""
    parsed = httpx.URL(url)
    target = httpcore.URL(
        scheme=parsed.raw_scheme, host=parsed.raw_host, port=parsed.port, target=parsed.raw_path
    )
    return target, parsed.netloc


def post(
    request: Request,
    *,
    timeout: float,
    clock: Clock,
    guard: Guard,
    excerpt_bytes: int = 0,
    ssl_context: ssl.SSLContext | None = None,
) -> AttemptResult:
    """POST once to an address `guard` allows; never raises for anything the network, DNS or
    the receiver does. Only `excerpt_bytes` of the answer's body are kept (0: none)."""
    started, start = clock.now(), clock.monotonic()
    limits = {"connect": timeout, "read": timeout, "write": timeout, "pool": timeout}
    status: int | None = None
    answer, code, permanent = Answer(), None, False
    try:
        target, host = _target(request.url)
        with (
            httpcore.ConnectionPool(
                ssl_context=ssl_context or httpx.create_ssl_context(),
                network_backend=PinnedBackend(guard),
                max_connections=1,
            ) as pool,
            pool.stream(
                "POST",
                target,
                headers=[(b"Host", host), *request.headers.items()],
                content=request.body,
                extensions={"timeout": limits},
            ) as response,
        ):
            status, (error, code) = response.status, _status_error(response)
            answer = _answer(response, excerpt_bytes)
    except (AddressRefused, LookupFailed, *_TRANSPORT_ERRORS) as exc:
        error, code, permanent = _failure(exc, timeout)
    duration_ms = max(0, round((clock.monotonic() - start) * 1000))
    return AttemptResult(started, duration_ms, status, error, code, answer, permanent)


def post_as_configured(
    request: Request, settings: Settings, clock: Clock, excerpt_bytes: int = 0
) -> AttemptResult:
    """`post` under the server's webhook settings: REELOUT_WEBHOOK_TIMEOUT_SECONDS and the
    networks REELOUT_WEBHOOK_ALLOW_NETWORKS lets through (media webhooks and alert receivers)."""
    guard = Guard(allow=tuple(settings.webhook_allow_networks))
    timeout = settings.webhook_timeout_seconds
    return post(request, timeout=timeout, clock=clock, guard=guard, excerpt_bytes=excerpt_bytes)
