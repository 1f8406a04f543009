"""The Python telemetry client: `TelemetryClient(...).track("playing", video_id=...)` reports
events to Reelout's ingest (`POST /api/v1/telemetry/events`) without ever hurting the app.

    with TelemetryClient("https://reelout.example.com", "rlo_client_…",
                         spool_dir="/var/lib/myapp/telemetry", viewer_id="user-17") as telemetry:
        telemetry.identify(flags={"use_tus_upload": "on"})
        telemetry.track("upload_completed", bytes=1_000_000, duration_ms=5_300, method="tus")

`track` only serialises the event and appends it to a bounded queue (the oldest dropped and
counted when full); it never blocks on I/O and never raises. One background thread writes the
queue to the spool (`reelout.client.spool`: a folder that survives restarts, or memory) and
sends it in batches as NDJSON, gzip above `gzip_min_bytes`. Network errors, 5xx and 408 are
retried with exponential backoff and jitter; 429 waits its `Retry-After`; 413 `BATCH_TOO_LARGE`
or `BODY_TOO_LARGE` halves the batch; events the server rejects (in its `rejected` list, or a
batch it cannot read) are counted and never sent again. Every exception is caught and counted
in `stats()`.

Hand-written: the analytics SDKs on PyPI (Segment's, PostHog's, Mixpanel's) speak their own
services' protocols, keep events in memory only and drop them on a failed send; Reelout's
contract (event model v1, NDJSON, per-event rejections, an on-disk spool) is small enough to
serve directly over httpx.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import dataclasses
import email.utils
import gzip
import json
import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from reelout import __version__
from reelout.client.spool import DiskSpool, MemorySpool, Spool

if TYPE_CHECKING:
    from reelout.client.uploader import Progress, UploadResult

log = logging.getLogger("reelout.client.telemetry")

EVENTS_PATH = "/api/v1/telemetry/events"
MAX_RETRY_AFTER = 3600.0  # a Retry-After longer than an hour is taken as an hour
SPLIT_CODES = frozenset({"BATCH_TOO_LARGE", "BODY_TOO_LARGE"})
HOLD_STATUSES = frozenset({401, 403, 404})  # a wrong key or address: keep the events, wait long
RETRY_STATUSES = frozenset({408})
UPLOAD_RETRY_STATUSES = frozenset({409, 423, 460})  # what the uploader itself retries


@dataclass(frozen=True)
class TelemetryStats:
    """What became of the events so far (a snapshot; counters only grow)."""

    tracked: int = 0  # handed to track()
    sent: int = 0  # stored by the server
    duplicates: int = 0  # the server had them already (a resend after a crash)
    rejected: int = 0  # refused by the server: counted, never sent again
    retries: int = 0  # failed sends that will be tried again
    batches: int = 0  # requests the server answered
    dropped_queue_full: int = 0  # the oldest, pushed out of the memory bound (max_queue)
    dropped_spool_full: int = 0  # the oldest, pushed out of the spool folder (spool_max_bytes)
    dropped_invalid: int = 0  # not JSON, over max_event_bytes, or cut short on disk by a crash
    dropped_closed: int = 0  # tracked after close(), or unsent in memory at close()
    errors: int = 0  # exceptions caught inside the client
    queued: int = 0  # in memory, waiting for the client's thread
    pending: int = 0  # in the spool, not yet delivered

    @property
    def dropped(self) -> int:
        return (
            self.dropped_queue_full
            + self.dropped_spool_full
            + self.dropped_invalid
            + self.dropped_closed
        )


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with jitter: first, 2·first, 4·first … capped at most."""

    first: float = 1.0
    most: float = 60.0

    def pause(self, failures: int) -> float:
        return min(self.most, self.first * 2.0 ** min(failures, 30)) * random.uniform(0.5, 1.0)


@dataclass(frozen=True)
class _Options:
    url: str
    headers: Mapping[str, str]
    batch_size: int
    flush_interval: float
    max_queue: int
    spool_dir: Path | None
    spool_max_bytes: int
    fsync: bool
    max_event_bytes: int
    gzip_min_bytes: int
    timeout: float
    backoff: Backoff


@dataclass(frozen=True)
class _Answer:
    """What to do with a batch after one try."""

    done: bool  # delivered, or given up on: take it off the spool
    split: bool = False  # too large for the server: try half as many
    wait: float = 0.0  # try again after this many seconds
    strict: bool = False  # the wait is the server's Retry-After: flush() honours it too


class TelemetryClient:
    """Batches events to Reelout in a background thread; see the module docstring."""

    def __init__(
        self,
        base_url: str,
        client_key: str,
        *,
        batch_size: int = 100,
        flush_interval: float = 5.0,
        max_queue: int = 10_000,
        spool_dir: str | Path | None = None,
        spool_max_bytes: int = 32 * 1024 * 1024,
        fsync: bool = True,
        max_event_bytes: int = 16 * 1024,
        gzip_min_bytes: int = 4096,
        timeout: float = 10.0,
        backoff: Backoff | None = None,
        viewer_id: str | None = None,
        session_id: str | None = None,
        platform: str | None = None,
        app_version: str | None = None,
        flags: Mapping[str, str] | None = None,
    ) -> None:
        """Only arguments out of range raise (ValueError); nothing after that does.

        `session_id` defaults to a new id per client (one client, one app session)."""
        if min(batch_size, max_queue, max_event_bytes, spool_max_bytes) < 1 or (
            flush_interval <= 0 or timeout <= 0
        ):
            raise ValueError("sizes, counts, the flush interval and the timeout must be positive")
        self._opts = _Options(
            base_url.rstrip("/") + EVENTS_PATH,
            {
                "Authorization": f"Bearer {client_key}",
                "User-Agent": f"reelout-python/{__version__}",
                "Content-Type": "application/x-ndjson",
            },
            batch_size,
            flush_interval,
            max_queue,
            Path(spool_dir) if spool_dir is not None else None,
            spool_max_bytes,
            fsync,
            max_event_bytes,
            gzip_min_bytes,
            timeout,
            backoff or Backoff(),
        )
        self._lock = threading.Lock()
        self._queue: collections.deque[bytes] = collections.deque(maxlen=max_queue)
        self._common: dict[str, Any] = {}
        self._counts: dict[str, int] = collections.Counter()
        self._closed = False
        self._sender = _Sender(self._opts, self._count, self._take_queue)
        self.identify(
            viewer_id=viewer_id,
            session_id=session_id or str(uuid.uuid4()),
            platform=platform,
            app_version=app_version,
            flags=dict(flags) if flags else None,
        )
        self._thread = threading.Thread(target=self._sender.run, name="reelout-telemetry")
        self._thread.daemon = True
        self._thread.start()
        atexit.register(self.close)

    # ---- the app's side: O(1), no I/O, never raises ------------------------------------------

    def identify(self, **common: Any) -> None:
        """Set fields every later event carries (viewer_id, session_id, platform, app_version,
        player, flags, …); None removes one. An event's own fields win over these."""
        try:
            copied = {k: dict(v) if isinstance(v, Mapping) else v for k, v in common.items()}
            with self._lock:
                merged = {**self._common, **copied}
                self._common = {k: v for k, v in merged.items() if v is not None}
        except Exception:
            self._count("errors")
            log.debug("identify(%r) failed", common, exc_info=True)

    def track(self, event_type: str, /, **fields: Any) -> str | None:
        """Queue one event of `event_type` with the common fields, a new `event_id` and the
        current `client_time` (both may be given); returns its event_id, or None when it was
        dropped (not serialisable, over `max_event_bytes`, or the client is closed)."""
        try:
            event = {
                "event_id": str(uuid.uuid4()),
                "client_time": datetime.now(UTC).isoformat(timespec="milliseconds"),
                **self._common,
                **fields,
                "type": event_type,
            }
            line = _encoded(event, self._opts.max_event_bytes)
            return self._enqueue(line, str(event["event_id"]))
        except Exception:
            self._count("errors")
            log.debug("track(%r) failed", event_type, exc_info=True)
            return None

    def _enqueue(self, line: bytes | None, event_id: str) -> str | None:
        with self._lock:
            self._counts["tracked"] += 1
            if line is None:
                self._counts["dropped_invalid"] += 1
                return None
            if self._closed:
                self._counts["dropped_closed"] += 1
                return None
            if len(self._queue) == self._opts.max_queue:
                self._counts["dropped_queue_full"] += 1
            self._queue.append(line)
            full = len(self._queue) >= self._opts.batch_size
        if full:
            self._sender.wake.set()
        return event_id

    def _take_queue(self) -> list[bytes]:
        """For the sender: everything queued so far, in order (the queue starts afresh)."""
        with self._lock:
            taken, self._queue = self._queue, collections.deque(maxlen=self._opts.max_queue)
        return list(taken)

    def _count(self, name: str, by: int = 1) -> None:
        with self._lock:
            self._counts[name] += by

    # ---- control ---------------------------------------------------------------------------------

    def stats(self) -> TelemetryStats:
        with self._lock:
            counts = {f.name: self._counts.get(f.name, 0) for f in _STAT_FIELDS}
            counts["queued"] = len(self._queue)
        counts["pending"] = self._sender.pending
        return TelemetryStats(**counts)

    def flush(self, timeout: float = 30.0) -> bool:
        """Send everything tracked so far now; wait at most `timeout` seconds. True when nothing
        is left to send (each event stored, or refused by the server and counted); when False,
        what is left is in the spool (on disk, with a spool folder) and goes later. A 429's
        Retry-After holds here too: until it has passed, flush answers False."""
        try:
            if not self._thread.is_alive():
                return False
            return self._sender.flush(timeout)
        except Exception:
            self._count("errors")
            log.debug("flush failed", exc_info=True)
            return False

    def close(self, timeout: float = 10.0) -> None:
        """Stop: send what can be sent within `timeout` seconds; what is left stays in the spool
        folder for the next client on it (without one, it is dropped and counted)."""
        try:
            with self._lock:
                if self._closed:
                    return
                self._closed = True
            atexit.unregister(self.close)
            self._sender.stop(time.monotonic() + timeout)
            self._thread.join(timeout)
        except Exception:
            self._count("errors")
            log.debug("close failed", exc_info=True)

    def __enter__(self) -> TelemetryClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


_STAT_FIELDS = dataclasses.fields(TelemetryStats)


class _Sender:
    """The client's thread: moves the queue into the spool and the spool to the server."""

    def __init__(
        self,
        opts: _Options,
        count: Callable[[str, int], None],
        take: Callable[[], list[bytes]],
    ) -> None:
        self.opts, self.count, self.take, self.clock = opts, count, take, time.monotonic
        self.wake = threading.Event()
        self.spool: Spool = MemorySpool(opts.max_queue)
        self.pending = 0  # the spool's, as of the thread's last step (read by other threads)
        self.limit = opts.batch_size  # lowered when the server says a batch is too large
        self.failures = 0
        self.resume_at = 0.0
        self.strict = False
        self.deadline: float | None = None  # set by stop()
        self.http: httpx.Client | None = None
        self.asked = self.done = 0  # flush requests made / served
        self.served = threading.Condition()

    # ---- the app's requests ----------------------------------------------------------------

    def flush(self, timeout: float) -> bool:
        with self.served:
            self.asked += 1
            ticket = self.asked
        self.wake.set()
        with self.served:
            self.served.wait_for(lambda: self.done >= ticket, timeout)
            answered = self.done >= ticket
        return answered and self.pending == 0

    def stop(self, deadline: float) -> None:
        self.deadline = deadline
        self.wake.set()

    # ---- the thread ---------------------------------------------------------------------------

    def run(self) -> None:
        self._guarded(self._open_spool)
        if self.pending:
            self.wake.set()  # what an earlier client left goes first, without waiting a tick
        while self._turn():
            pass
        self._guarded(self._shut)

    def _turn(self) -> bool:
        """Sleep until woken or the next tick, then one cycle; False once stopping."""
        self.wake.wait(self._idle())
        self.wake.clear()
        with self.served:
            ticket = self.asked
        stopping = self.deadline is not None
        forced = ticket > self.done or stopping
        self._guarded(lambda: self._cycle(forced))
        with self.served:
            self.done = max(self.done, ticket)
            self.served.notify_all()
        return not stopping

    def _idle(self) -> float:
        """How long to sleep: until the next tick, or the end of a backoff with events waiting."""
        if self.pending and self.resume_at:
            return max(0.0, min(self.opts.flush_interval, self.resume_at - self.clock()))
        return self.opts.flush_interval

    def _guarded(self, action: Callable[[], None]) -> None:
        try:
            action()
        except Exception:
            self._add("errors")
            log.warning("telemetry: unexpected error (counted, carrying on)", exc_info=True)
        with contextlib.suppress(Exception):
            self.pending = self.spool.pending

    def _open_spool(self) -> None:
        folder = self.opts.spool_dir
        if folder is None:
            return
        try:
            spool = DiskSpool(folder, self.opts.spool_max_bytes, fsync=self.opts.fsync)
        except OSError as exc:  # SpoolBusy, no permission, no space
            self._add("errors")
            log.warning(
                "telemetry: cannot use the spool %s (%s); keeping events in memory", folder, exc
            )
            return
        self._add("dropped_invalid", spool.torn)
        self.spool = spool
        self.pending = spool.pending

    def _cycle(self, forced: bool) -> None:
        self._drain()
        if not self._may_send(forced):
            return
        while self.spool.pending and not self._past_deadline():
            batch = self.spool.peek(self.limit)
            if not batch:
                return
            answer = self._post(batch)
            if answer.split:
                self.limit = max(1, len(batch) // 2)
                log.info("telemetry: the server takes smaller batches; now %d", self.limit)
                continue
            if not answer.done:
                self._hold(answer)
                return
            self.spool.ack(len(batch))
            self.failures, self.resume_at, self.strict = 0, 0.0, False
            self._drain()
            self.pending = self.spool.pending

    def _drain(self) -> None:
        """Move the app's queue into the spool (one write, one fsync)."""
        lines = self.take()
        if not lines:
            return
        try:
            dropped = self.spool.append(lines)
        except OSError as exc:
            self._add("errors")
            log.warning("telemetry: the spool failed (%s); keeping events in memory", exc)
            self._close_spool()
            self.spool = MemorySpool(self.opts.max_queue)
            dropped = self.spool.append(lines)
        full = "dropped_spool_full" if isinstance(self.spool, DiskSpool) else "dropped_queue_full"
        self._add(full, dropped)
        self.pending = self.spool.pending

    def _may_send(self, forced: bool) -> bool:
        now = self.clock()
        return now >= self.resume_at or (forced and not self.strict)

    def _past_deadline(self) -> bool:
        return self.deadline is not None and self.clock() >= self.deadline

    def _hold(self, answer: _Answer) -> None:
        self._add("retries")
        self.failures += 1
        self.resume_at = self.clock() + answer.wait
        self.strict = answer.strict

    # ---- one request ---------------------------------------------------------------------------

    def _post(self, batch: list[bytes]) -> _Answer:
        body = b"".join(batch)
        headers = dict(self.opts.headers)
        if len(body) >= self.opts.gzip_min_bytes:
            body = gzip.compress(body, compresslevel=6)
            headers["Content-Encoding"] = "gzip"
        try:
            reply = self._http().post(
                self.opts.url, content=body, headers=headers, timeout=self._timeout()
            )
        except httpx.HTTPError as exc:
            return self._retry(f"cannot reach the server ({type(exc).__name__}: {exc})")
        return self._judge(reply, len(batch))

    def _judge(self, reply: httpx.Response, count: int) -> _Answer:
        status = reply.status_code
        if status == 200:
            self._settle(reply, count)
            return _Answer(done=True)
        code = _error_code(reply)
        if status == 413 and (code in SPLIT_CODES or code is None) and count > 1:
            return _Answer(done=False, split=True)
        if status == 429:
            wait = max(_retry_after(reply), self.opts.backoff.pause(self.failures))
            log.info("telemetry: rate limited; retrying in %.1f s", wait)
            return _Answer(done=False, wait=wait, strict=True)
        if status >= 500 or status in RETRY_STATUSES:
            return self._retry(f"HTTP {status}", _retry_after(reply))
        if status in HOLD_STATUSES:
            log.error(
                "telemetry: HTTP %d %s: check the client key and the base URL; events are kept",
                status,
                code or "",
            )
            return _Answer(done=False, wait=self.opts.backoff.most)
        self._add("rejected", count)  # 400, 415, a lone event over 413…: it would fail again
        log.warning(
            "telemetry: the server refused a batch of %d (HTTP %d %s): %s",
            count,
            status,
            code or "",
            reply.text[:300],
        )
        return _Answer(done=True)

    def _settle(self, reply: httpx.Response, count: int) -> None:
        self._add("batches")
        try:
            answer = reply.json()
            rejected = list(answer.get("rejected") or [])
            accepted, duplicates = int(answer["accepted"]), int(answer["duplicates"])
        except (ValueError, KeyError, TypeError, AttributeError):
            log.debug("telemetry: an unreadable 200 answer, counted as sent: %r", reply.text[:300])
            rejected, accepted, duplicates = [], count, 0
        for item in rejected:
            log.debug("telemetry: event rejected: %r", item)
        self._add("sent", accepted)
        self._add("duplicates", duplicates)
        self._add("rejected", len(rejected))

    def _retry(self, reason: str, least: float = 0.0) -> _Answer:
        wait = max(least, self.opts.backoff.pause(self.failures))
        level = logging.WARNING if self.failures == 0 else logging.DEBUG
        log.log(level, "telemetry: %s; retrying in %.1f s (events kept)", reason, wait)
        return _Answer(done=False, wait=wait)

    def _http(self) -> httpx.Client:
        if self.http is None:
            self.http = httpx.Client(timeout=self.opts.timeout)
        return self.http

    def _timeout(self) -> float:
        if self.deadline is None:
            return self.opts.timeout
        return max(0.1, min(self.opts.timeout, self.deadline - self.clock()))

    # ---- the end -----------------------------------------------------------------------------------

    def _shut(self) -> None:
        self._drain()
        if isinstance(self.spool, MemorySpool):
            self._add("dropped_closed", self.spool.pending)
        self._close_spool()
        if self.http is not None:
            self.http.close()

    def _close_spool(self) -> None:
        with contextlib.suppress(Exception):
            self.spool.close()

    def _add(self, name: str, by: int = 1) -> None:
        if by:
            self.count(name, by)


def _encoded(event: Mapping[str, Any], max_bytes: int) -> bytes | None:
    """The event as one NDJSON line, or None when it is not JSON or is too large."""
    try:
        text = json.dumps(
            event, separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=_plain
        )
    except (TypeError, ValueError, RecursionError):
        return None
    line = text.encode() + b"\n"
    return line if len(line) <= max_bytes else None


def _plain(value: Any) -> Any:
    """JSON for the few non-JSON types an app naturally passes; anything else is refused."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


def _error_code(reply: httpx.Response) -> str | None:
    try:
        code = reply.json().get("code")
    except (ValueError, AttributeError):
        return None
    return code if isinstance(code, str) else None


def _retry_after(reply: httpx.Response) -> float:
    """Retry-After as seconds (a number or an HTTP date), at most MAX_RETRY_AFTER."""
    value = reply.headers.get("retry-after", "").strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
            seconds = (when - datetime.now(UTC)).total_seconds()
        except (TypeError, ValueError):
            seconds = 0.0
    return min(MAX_RETRY_AFTER, max(0.0, seconds))


# ---- Reelout's own uploader as telemetry ----------------------------------------------------------


class UploadTelemetry:
    """Reports `reelout.client.upload` runs as upload events: pass `progress` as the upload's
    progress callback (an `upload_started` per file) and the results to `finished` (an
    `upload_completed` or `upload_failed` each, sharing the started event's `upload_id`).

        uploads = UploadTelemetry(telemetry)
        uploads.finished(upload(paths, server=..., key=..., progress=uploads.progress))
    """

    def __init__(self, client: TelemetryClient, **fields: Any) -> None:
        self.client, self.fields = client, fields
        self._ids: dict[Path, str] = {}
        self._lock = threading.Lock()

    def progress(self, update: Progress) -> None:
        with self._lock:
            if update.path in self._ids:
                return
            self._ids[update.path] = upload_id = str(uuid.uuid4())
        self.client.track(
            "upload_started", upload_id=upload_id, method="tus", bytes=update.total, **self.fields
        )

    def finished(self, results: Iterable[UploadResult]) -> None:
        for result in results:
            with self._lock:
                upload_id = self._ids.pop(result.path, None) or str(uuid.uuid4())
            event_type, outcome = upload_outcome(result)
            self.client.track(event_type, upload_id=upload_id, **outcome, **self.fields)


def upload_outcome(result: UploadResult) -> tuple[str, dict[str, Any]]:
    """The event type and fields of one uploader result (event model v1)."""
    common = {"method": "tus", "bytes": result.size, "attempts": result.retries + 1}
    if result.ok:
        return "upload_completed", {**common, "duration_ms": round(result.seconds * 1000)}
    status, error = result.status, result.error or ""
    retryable = status is None or status >= 500 or status in UPLOAD_RETRY_STATUSES
    if status:
        error_class = f"http_{status}"
    elif error.startswith("cannot read"):  # the uploader's words for a local file it can't read
        error_class, retryable = "local_file", False
    elif error.startswith("cancelled"):
        error_class = "cancelled"
    else:
        error_class = "transport"  # no answer: refused, reset, timed out
    return "upload_failed", {**common, "error_class": error_class, "retryable": retryable}
