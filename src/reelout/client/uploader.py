"""The resumable uploader library: `upload(paths, server=..., key=...)` sends files to Reelout over tus.

tuspy fits as the engine: it is the maintained Python tus client, and its Uploader already does
URL storage keyed by a fingerprint, offset lookup on start, creation, chunking, metadata and the
checksum extension. It is always given a chunk size (it reads each chunk into memory). What it
lacks is added around it, not forked: a fingerprint and a thread/process-safe URL store
(`reelout.client.state`); timeouts, one keep-alive session, byte-level progress and the video id
(`reelout.client.tusio`); and here, retries with exponential backoff and jitter on network errors
and 5xx/409/423 (plus 460, a chunk damaged on the way), re-reading the offset before each retry —
tuspy's own retry fires on every non-2xx status after a fixed delay, so it is off. Also here: the
order-stage route (a one-time upload token), a local sha256 checked against the server's,
parallel files on a thread pool, and one `UploadResult` per file instead of an exception.
"""

from __future__ import annotations

import hashlib
import json
import mimetypes
import os
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import requests
from tusclient.client import TusClient
from tusclient.exceptions import TusCommunicationError

from reelout.client.state import FileFingerprint, UrlStore, default_state_path
from reelout.client.tusio import TusUploader, Wire, failure, network_errors

T = TypeVar("T")
MiB = 1024 * 1024
DEFAULT_CHUNK_SIZE = 8 * MiB
STAGES = ("inbound", "work", "outbound")
RETRY_STATUSES = frozenset({409, 423, 460})
GONE_STATUSES = frozenset({404, 410})
USER_AGENT = "reelout-uploader (tuspy)"
HINTS = {
    None: "check --server / REELOUT_URL and the network, then run the same command to resume",
    401: "check --key / REELOUT_KEY (an admin key, e.g. from data/admin.key)",
    403: "use an admin key (`reelout keys create --scope admin`)",
    404: "the upload is gone (expired or deleted); run again to start a new one",
    410: "the upload expired; run again to start a new one",
    413: "the file is over the server's limit (Tus-Max-Size, or the link's max_bytes)",
}
RETRY_HINT = "the server kept failing; run the same command again later to resume"


class UploadError(Exception):
    """One file's upload failed; `hint` says what to do next."""

    def __init__(self, message: str, *, status: int | None = None, hint: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.hint = hint


@dataclass(frozen=True)
class Progress:
    """A snapshot of one file: `offset` is confirmed by the server, `sending` is in flight."""

    path: Path
    total: int
    offset: int
    sending: int = 0
    state: str = "uploading"  # uploading | resumed | retrying | done | failed
    note: str = ""

    @property
    def done(self) -> int:
        return min(self.total, self.offset + self.sending)


ProgressCallback = Callable[[Progress], None]


@dataclass
class UploadResult:
    """The outcome of one file; `error` and `hint` are set when `ok` is false."""

    path: Path
    size: int = 0
    ok: bool = False
    video_uid: str | None = None
    upload_url: str | None = None
    seconds: float = 0.0
    sha256: str | None = None
    resumed_from: int = 0
    retries: int = 0
    verified: bool | None = None
    error: str | None = None
    hint: str | None = None
    status: int | None = None

    @property
    def rate(self) -> float:
        """Bytes per second sent by this run (a resumed upload counts only what it sent)."""
        return (self.size - self.resumed_from) / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter: delay, 2·delay, 4·delay … capped at max_delay."""

    retries: int = 5
    delay: float = 0.5
    max_delay: float = 30.0

    def pause(self, attempt: int) -> float:
        return min(self.max_delay, self.delay * 2.0**attempt) * random.uniform(0.5, 1.0)


@dataclass(frozen=True)
class _Options:
    server: str
    key: str
    order: str | None
    stage: str | None
    chunk_size: int
    policy: RetryPolicy
    timeout: tuple[float, float]
    verify: bool
    metadata: Mapping[str, str]
    progress: ProgressCallback | None
    cancel: threading.Event = field(default_factory=threading.Event)

    def auth(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.key}", "User-Agent": USER_AGENT}


def upload(
    paths: Iterable[str | os.PathLike[str]] | str | os.PathLike[str],
    *,
    server: str,
    key: str,
    order: str | None = None,
    stage: str | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    parallel: int = 1,
    progress: ProgressCallback | None = None,
    retries: int = 5,
    retry_delay: float = 0.5,
    timeout: float = 120.0,
    state_path: str | os.PathLike[str] | None = None,
    metadata: Mapping[str, str] | None = None,
    verify: bool = True,
) -> list[UploadResult]:
    """Upload files over tus, resuming any earlier attempt; one result per file, in order.

    With `order` and `stage` each file is attached to that order stage (the server hands out a
    one-time upload token). `progress` is called from worker threads. Failures are reported in
    the results, never raised; only bad arguments raise ValueError.
    """
    if (order is None) != (stage is None) or (stage is not None and stage not in STAGES):
        raise ValueError(f"give order and stage together; stage is one of {', '.join(STAGES)}")
    if chunk_size < 1 or parallel < 1:
        raise ValueError("chunk_size and parallel must be at least 1")
    opts = _Options(
        server.rstrip("/"),
        key,
        order,
        stage,
        chunk_size,
        RetryPolicy(retries, retry_delay),
        (min(timeout, 30.0), timeout),
        verify,
        dict(metadata or {}),
        progress,
    )
    store = UrlStore(Path(state_path) if state_path else default_state_path())
    many = [paths] if isinstance(paths, str | os.PathLike) else list(paths)
    return _run_all([Path(p) for p in many], opts, store, parallel)


def _run_all(
    files: list[Path], opts: _Options, store: UrlStore, parallel: int
) -> list[UploadResult]:
    if parallel == 1 or len(files) < 2:
        return [_upload_one(path, opts, store) for path in files]
    pool = ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="reelout-upload")
    try:
        return list(pool.map(lambda path: _upload_one(path, opts, store), files))
    except BaseException:
        opts.cancel.set()  # Ctrl-C: workers stop after their current chunk
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


class _Reporter:
    """Turns byte counts from the wire into `Progress` snapshots for the caller."""

    def __init__(self, path: Path, total: int, callback: ProgressCallback | None) -> None:
        self.path, self.total, self.callback = path, total, callback
        self.offset = 0

    def sending(self, sent: int) -> None:
        self._emit(sent=sent)

    def confirm(self, offset: int) -> None:
        self.offset = offset
        self._emit()

    def resumed(self, offset: int) -> None:
        self.offset = offset
        self._emit(state="resumed", note=f"resumed at {offset} bytes")

    def retrying(self, note: str) -> None:
        self._emit(state="retrying", note=note)

    def finish(self, result: UploadResult) -> None:
        offset = self.total if result.ok else self.offset
        self._emit(state="done" if result.ok else "failed", note=result.error or "", offset=offset)

    def _emit(
        self, sent: int = 0, state: str = "uploading", note: str = "", offset: int | None = None
    ) -> None:
        if self.callback is not None:
            at = self.offset if offset is None else offset
            self.callback(Progress(self.path, self.total, at, sent, state, note))


@dataclass
class _Job:
    """Everything about one file's upload."""

    path: Path
    opts: _Options
    store: UrlStore
    result: UploadResult
    reporter: _Reporter
    wire: Wire
    fingerprint: FileFingerprint

    @property
    def metadata(self) -> dict[str, str]:
        kind = mimetypes.guess_type(self.path.name)[0] or "application/octet-stream"
        return {"filename": self.path.name, "filetype": kind, **self.opts.metadata}

    def key(self) -> str:
        with self.path.open("rb") as fh:
            return self.fingerprint.get_fingerprint(fh)


def _upload_one(path: Path, opts: _Options, store: UrlStore) -> UploadResult:
    result = UploadResult(path)
    reporter = _Reporter(path, 0, opts.progress)
    try:
        result.size = reporter.total = path.stat().st_size
        with requests.Session() as http:
            wire = Wire(http, opts.timeout, reporter.sending)
            scope = f"{opts.server}|{opts.order or ''}|{opts.stage or ''}"
            job = _Job(path, opts, store, result, reporter, wire, FileFingerprint(scope))
            _complete(job)
        result.ok = True
    except UploadError as exc:
        result.error, result.hint, result.status = str(exc), exc.hint, exc.status
    except OSError as exc:
        result.error, result.hint = f"cannot read {path}: {exc.strerror or exc}", "check the path"
    reporter.finish(result)
    return result


def _complete(job: _Job) -> None:
    started = time.monotonic()
    key = job.key()
    try:
        _transfer(job)
    except UploadError as exc:
        if exc.status in GONE_STATUSES:
            job.store.remove_item(key)
        raise
    finally:
        job.result.seconds = time.monotonic() - started
    job.store.remove_item(key)
    job.result.sha256 = _sha256(job.path)
    if job.opts.verify:
        _verify(job)


def _transfer(job: _Job) -> None:
    up = _open(job)
    if up.url:
        job.result.resumed_from = up.offset
        job.reporter.resumed(up.offset)
    else:
        if job.opts.order:
            up.client = _order_client(job)
        _retrying(job, lambda: up.set_url(up.create_url()), "creating the upload")
        up.offset = 0
    job.result.upload_url = up.url
    while up.offset < up.stop_at:
        if job.opts.cancel.is_set():
            raise UploadError("cancelled", hint="run the same command again to resume")
        _retrying(job, up.send_next_chunk, "sending bytes")
        job.reporter.confirm(up.offset)
    job.result.video_uid = job.wire.video_uid


def _open(job: _Job) -> TusUploader:
    """A tuspy uploader; it finds a stored URL for this file and asks the server its offset."""

    def make() -> TusUploader:
        return TusUploader(
            job.wire,
            file_path=str(job.path),
            client=TusClient(_tus_url(job.opts), job.opts.auth()),
            chunk_size=job.opts.chunk_size,
            metadata=job.metadata,
            store_url=True,
            url_storage=job.store,
            fingerprinter=job.fingerprint,
            upload_checksum=True,
        )

    try:
        return _retrying(job, make, "checking the stored upload")
    except UploadError as exc:
        if exc.status not in GONE_STATUSES:
            raise
    job.store.remove_item(job.key())
    return make()


def _tus_url(opts: _Options) -> str:
    return f"{opts.server}/files/"


def _order_client(job: _Job) -> TusClient:
    """Ask the order-stage route for a tus link; the upload is then made with its token."""
    opts = job.opts
    assert opts.order is not None
    url = f"{opts.server}/api/v1/orders/{quote(opts.order, safe='')}/{opts.stage}/videos"
    body = {"upload": "tus", "meta": job.metadata, "max_bytes": job.result.size}
    data = _retrying(job, lambda: _post_json(job.wire, url, opts.auth(), body), "asking for a link")
    job.wire.video_uid = str(data["uid"])
    return TusClient(str(data["upload"]["url"]), opts.auth(str(data["upload"]["token"])))


def _post_json(wire: Wire, url: str, headers: dict[str, str], body: object) -> dict[str, Any]:
    with network_errors():
        resp = wire.http.post(url, json=body, headers=headers, timeout=wire.timeout)
    if resp.status_code >= 300:
        raise failure(resp.status_code, resp.content)
    data: dict[str, Any] = resp.json()
    return data


def _retrying(job: _Job, action: Callable[[], T], what: str) -> T:
    """Run `action`, retrying network errors and 5xx/409/423/460 with exponential backoff."""
    policy, attempt = job.opts.policy, 0
    while True:
        try:
            return action()
        except TusCommunicationError as exc:
            status = exc.status_code
            if not _retryable(status) or attempt >= policy.retries:
                raise _as_error(exc, what, retried=attempt > 0) from exc
            pause = policy.pause(attempt)
            attempt += 1
            job.result.retries += 1
            job.reporter.retrying(
                f"{_reason(exc)}; retry {attempt}/{policy.retries} in {pause:.1f}s"
            )
            if job.opts.cancel.wait(pause):
                raise UploadError("cancelled", hint="run the same command again to resume") from exc


def _retryable(status: int | None) -> bool:
    return status is None or status >= 500 or status in RETRY_STATUSES


def _reason(exc: TusCommunicationError) -> str:
    if exc.status_code is None:
        return f"network error ({type(exc.__cause__ or exc).__name__})"
    return f"HTTP {exc.status_code}"


def _as_error(exc: TusCommunicationError, what: str, *, retried: bool) -> UploadError:
    status: int | None = exc.status_code
    if status is None:
        message = f"{what} failed: cannot reach the server ({exc})"
    else:
        message = f"{what} failed: HTTP {status}" + _server_says(exc.response_content)
    hint = HINTS.get(status, RETRY_HINT if retried or _retryable(status) else "")
    if status == 401 and "UPLOAD_TOKEN" in message:
        hint = "the one-time upload link was used or expired; run again to get a new one"
    return UploadError(message, status=status, hint=hint)


def _server_says(content: bytes | str | None) -> str:
    """The server's `{code, message}` error body as ' (CODE: message)', or ''."""
    try:
        body = json.loads(content or "")
        return f" ({body['code']}: {body['message']})"
    except (TypeError, ValueError, KeyError):
        return ""


def _verify(job: _Job) -> None:
    """Compare the server's sha256 of the stored original with ours (when the key may read it)."""
    if job.result.video_uid is None:
        return
    url = f"{job.opts.server}/api/v1/videos/{job.result.video_uid}"
    try:
        resp = job.wire.http.get(url, headers=job.opts.auth(), timeout=job.wire.timeout)
        theirs = resp.json().get("original_sha256") if resp.status_code == 200 else None
    except (requests.RequestException, ValueError, AttributeError):
        return
    if theirs is None:
        return
    job.result.verified = theirs == job.result.sha256
    if not job.result.verified:
        raise UploadError(
            f"the server stored different bytes (sha256 {theirs}, local {job.result.sha256})",
            hint="run again to upload afresh",
        )


def _sha256(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()
