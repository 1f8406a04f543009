"""The in-process OpenFeature provider: a server key's whole flag set, evaluated by the server's
own engine, kept current by the change stream (polling when it is away) and kept on disk.

    from openfeature import api
    from reelout.client.flags import ReeloutProvider

    api.set_provider(ReeloutProvider("https://flags.example.com", "rlo_server_…",
                                     cache_path="/var/cache/myapp/flags.json"))
    api.get_client().get_boolean_value("use_tus_upload", False, EvaluationContext("user-1"))

Evaluations never raise and never wait on the network: they read the last good flag set in
memory. Without one (first start, server down, no cache file) the app gets its code defaults
with PROVIDER_NOT_READY until the first set arrives.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import socket
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
from httpx_sse import connect_sse
from openfeature.evaluation_context import EvaluationContext
from openfeature.event import ProviderEventDetails
from openfeature.exception import ErrorCode as OpenFeatureErrorCode
from openfeature.flag_evaluation import FlagResolutionDetails
from openfeature.provider import AbstractProvider, Metadata

from reelout import __version__
from reelout.flags.engine.evaluator import (
    FlagSet,
    FlagSetError,
    Resolution,
    evaluate,
    parse_flag_set,
)

log = logging.getLogger("reelout.client.flags")

SYNC_PATH = "/api/v1/sync/flagset"
EVENTS_PATH = "/ofrep/v1/events"
T = TypeVar("T")


@dataclass(frozen=True)
class Snapshot:
    """One revision of the environment's flag set: its stored text and compiled form."""

    environment: str
    revision: int
    etag: str
    text: str
    flags: FlagSet

    @classmethod
    def of(cls, environment: str, revision: int, etag: str, text: str) -> Snapshot:
        return cls(environment, revision, etag, text, parse_flag_set(text))


class SnapshotFile:
    """The last good flag set on disk, replaced atomically so a crash never leaves half a file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> Snapshot | None:
        try:
            saved = json.loads(self.path.read_text(encoding="utf-8"))
            return Snapshot.of(
                saved["environment"], saved["revision"], saved["etag"], saved["flagset"]
            )
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError, FlagSetError) as exc:
            log.warning("ignoring the flag cache %s: %s", self.path, exc)
            return None

    def save(self, snapshot: Snapshot) -> None:
        record = {
            "environment": snapshot.environment,
            "revision": snapshot.revision,
            "etag": snapshot.etag,
            "flagset": snapshot.text,
        }
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".flags-")
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(record, out)
            os.replace(temporary, self.path)
        except OSError as exc:
            log.warning("cannot write the flag cache %s: %s", self.path, exc)


class ReeloutProvider(AbstractProvider):
    """OpenFeature provider evaluating a Reelout environment's flags in this process."""

    def __init__(
        self,
        base_url: str,
        server_key: str,
        *,
        cache_path: str | Path | None = None,
        poll_interval: float = 30.0,
        streaming: bool = True,
        timeout: float = 5.0,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._headers = {
            "Authorization": f"Bearer {server_key}",
            "User-Agent": f"reelout-python/{__version__}",
        }
        self._file = SnapshotFile(Path(cache_path)) if cache_path else None
        self._poll_interval = poll_interval
        self._streaming = streaming
        self._timeout = timeout
        self._snapshot: Snapshot | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._client: httpx.Client | None = None
        self._stream: httpx.Response | None = None

    # ---- OpenFeature lifecycle ---------------------------------------------------------------

    def get_metadata(self) -> Metadata:
        return Metadata(name="reelout")

    def initialize(self, evaluation_context: EvaluationContext) -> None:
        """Start from the cache file if there is one, fetch once, then follow changes in the
        background. Never raises: a server that is down only means the cache (or code defaults)
        until it is back."""
        self._client = httpx.Client(
            base_url=self._base_url, headers=self._headers, timeout=self._timeout
        )
        if self._file is not None:
            self._snapshot = self._file.load()
        self._refresh()
        self._thread = threading.Thread(target=self._follow, name="reelout-flags", daemon=True)
        self._thread.start()

    def shutdown(self) -> None:
        self._stop.set()
        if self._stream is not None:
            hang_up(self._stream)
        if self._client is not None:
            self._client.close()
        if self._thread is not None:
            self._thread.join(timeout=self._timeout + 1)

    @property
    def revision(self) -> int | None:
        """The revision being served (None before the first flag set)."""
        return self._snapshot.revision if self._snapshot else None

    # ---- evaluation ----------------------------------------------------------------------------

    def resolve_boolean_details(
        self,
        flag_key: str,
        default_value: bool,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[bool]:
        return self._resolve(flag_key, default_value, bool, evaluation_context)

    def resolve_string_details(
        self, flag_key: str, default_value: str, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[str]:
        return self._resolve(flag_key, default_value, str, evaluation_context)

    def resolve_integer_details(
        self, flag_key: str, default_value: int, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[int]:
        return self._resolve(flag_key, default_value, int, evaluation_context)

    def resolve_float_details(
        self,
        flag_key: str,
        default_value: float,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[float]:
        return self._resolve(flag_key, default_value, float, evaluation_context)

    def resolve_object_details(
        self,
        flag_key: str,
        default_value: Any,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[Any]:
        return self._resolve(flag_key, default_value, dict, evaluation_context)

    def _resolve(
        self, key: str, default: T, kind: type, context: EvaluationContext | None
    ) -> FlagResolutionDetails[T]:
        snapshot = self._snapshot
        if snapshot is None:
            return FlagResolutionDetails(
                default,
                error_code=OpenFeatureErrorCode.PROVIDER_NOT_READY,
                error_message="no flag set yet: the server has not answered and there is no cache",
            )
        try:
            resolution = evaluate(
                snapshot.flags,
                key,
                _context(context),
                default=default,
                expected_type=kind,
                now=time.time(),
            )
        except Exception as exc:  # never into the app: the code default and a reason
            log.exception("evaluating flag %r failed", key)
            return FlagResolutionDetails(
                default, error_code=OpenFeatureErrorCode.GENERAL, error_message=str(exc)
            )
        return _details(resolution)

    # ---- keeping current -------------------------------------------------------------------------

    def _refresh(self) -> bool:
        """Fetch the flag set if it changed; True when the server answered."""
        assert self._client is not None
        known = self._snapshot
        headers = {"If-None-Match": known.etag} if known else {}
        try:
            reply = self._client.get(SYNC_PATH, headers=headers)
        except httpx.HTTPError as exc:
            log.warning("flag sync: %s unreachable (%s); serving what we have", self._base_url, exc)
            return False
        if reply.status_code == 304:
            return True
        if reply.status_code != 200:
            log.error("flag sync refused: HTTP %d %s", reply.status_code, reply.text[:300])
            return False
        self._adopt(reply)
        return True

    def _adopt(self, reply: httpx.Response) -> None:
        try:
            snapshot = Snapshot.of(
                reply.headers["reelout-environment"],
                int(reply.headers["reelout-revision"]),
                reply.headers["etag"],
                reply.text,
            )
        except (KeyError, ValueError, FlagSetError) as exc:
            log.error("flag sync: unusable flag set (%s); keeping the last good one", exc)
            return
        first = self._snapshot is None
        self._snapshot = snapshot
        if self._file is not None:
            self._file.save(snapshot)
        changed = ProviderEventDetails(flags_changed=sorted(snapshot.flags.flags))
        if first:
            self.emit_provider_ready(changed)
        else:
            self.emit_provider_configuration_changed(changed)

    def _follow(self) -> None:
        """Until shutdown: follow the change stream; when it is away, poll and retry it."""
        failures = 0
        while not self._stop.is_set():
            if self._streaming and self._listen():
                failures = 0
                continue
            failures += 1
            self._stop.wait(self._backoff(failures))
            if not self._stop.is_set():
                self._refresh()

    def _listen(self) -> bool:
        """One stream connection; True when it was up (and ended), False when it never was."""
        assert self._client is not None
        since = self._snapshot.revision if self._snapshot else 0
        try:
            with connect_sse(
                self._client,
                "GET",
                EVENTS_PATH,
                params={"since": since},
                timeout=httpx.Timeout(self._timeout, read=60.0),
            ) as source:
                if source.response.status_code != 200:
                    self._stream_refused(source.response)
                    return False
                self._stream = source.response
                for event in source.iter_sse():
                    if self._stop.is_set():
                        return True
                    if event.data and _is_refetch(event.data):
                        self._refresh()
            return True
        except (httpx.HTTPError, RuntimeError) as exc:
            if not self._stop.is_set():
                log.info("flag change stream interrupted (%s); reconnecting", exc)
            return False
        finally:
            self._stream = None

    def _stream_refused(self, response: httpx.Response) -> None:
        response.read()
        if response.status_code == 503 and "STREAMS_OFF" in response.text:
            log.info("the server has no change stream; polling every %gs", self._poll_interval)
            self._streaming = False
        else:
            log.warning("flag change stream refused: HTTP %d", response.status_code)

    def _backoff(self, failures: int) -> float:
        """Polling cadence without a stream; reconnect attempts back off with jitter."""
        if not self._streaming:
            return self._poll_interval
        backoff: float = 0.5 * 2.0 ** min(failures, 8)
        return min(self._poll_interval, backoff) * random.uniform(0.8, 1.2)


def hang_up(response: httpx.Response) -> None:
    """End a stream another thread is blocked reading: shut its socket down (closing the
    response from here would wait for that thread)."""
    stream = response.extensions.get("network_stream")
    sock = stream.get_extra_info("socket") if stream is not None else None
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def _is_refetch(data: str) -> bool:
    try:
        payload = json.loads(data)
    except ValueError:
        return False
    return isinstance(payload, dict) and payload.get("type") == "refetchEvaluation"


def _context(context: EvaluationContext | None) -> Mapping[str, Any]:
    if context is None:
        return {}
    values = dict(context.attributes)
    if context.targeting_key is not None:
        values["targetingKey"] = context.targeting_key
    return values


_ERRORS: dict[str, OpenFeatureErrorCode] = {code.value: code for code in OpenFeatureErrorCode}


def _details(resolution: Resolution) -> FlagResolutionDetails[Any]:
    code = resolution.error_code
    return FlagResolutionDetails(
        resolution.value,
        error_code=_ERRORS.get(code.value, OpenFeatureErrorCode.GENERAL) if code else None,
        error_message=resolution.error_message,
        reason=resolution.reason.value,
        variant=resolution.variant,
        flag_metadata=dict(resolution.flag_metadata),
    )
