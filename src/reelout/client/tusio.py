"""tuspy's Uploader, adjusted: one keep-alive session, timeouts, live byte counts, no inner retry.

tuspy does the protocol work we keep: URL storage and fingerprint lookup on start, HEAD for the
offset, POST to create, chunk sizing, metadata encoding and the `Upload-Checksum` header (sha1,
which every tus server with the checksum extension must support). What it lacks is overridden
here, in the smallest places: its requests carry no timeout and open a new connection per call,
the PATCH body is sent in one piece (no progress inside a chunk), the `Reelout-Video-Id` reply
header is dropped, and its built-in retry fires on every status (401, 413 included) after a fixed
delay, so it is switched off (`retries=0`) and `reelout.client.uploader` retries instead.
"""

# tuspy's methods carry no annotations; calling them is the point of this module.
# mypy: disable-error-code="no-untyped-call"

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

import requests
from tusclient.exceptions import TusCommunicationError
from tusclient.request import TusRequest
from tusclient.uploader.uploader import Uploader

VIDEO_ID_HEADER = "reelout-video-id"
REPORT_EVERY = 256 * 1024


@dataclass
class Wire:
    """What every request of one file's upload shares."""

    http: requests.Session
    timeout: tuple[float, float]
    on_sent: Callable[[int], None] = lambda _sent: None
    video_uid: str | None = None

    def saw(self, headers: dict[str, str]) -> None:
        self.video_uid = headers.get(VIDEO_ID_HEADER) or self.video_uid


def failure(status: int | None, content: bytes | None = None) -> TusCommunicationError:
    """tuspy's error for a reply that is not 2xx (`status`), or a network error (None)."""
    return TusCommunicationError(None, status, content)


@contextlib.contextmanager
def network_errors() -> Iterator[None]:
    """Turn a requests error (refused, reset, timed out …) into tuspy's error with no status."""
    try:
        yield
    except requests.RequestException as error:
        raise TusCommunicationError(error) from error


class ChunkBody:
    """A chunk as a file-like body: requests sends it with Content-Length and we count reads.

    Reads hand out at least `REPORT_EVERY` bytes (urllib3 asks for 16 KiB and sends whatever it
    gets), so a chunk goes out in few system calls and each read is one progress report.
    """

    def __init__(self, data: bytes, on_sent: Callable[[int], None]) -> None:
        self._view = memoryview(data)
        self._pos = 0
        self._on_sent = on_sent

    def __len__(self) -> int:
        return len(self._view) - self._pos

    def read(self, size: int = -1) -> bytes:
        step = len(self._view) if size is None or size < 0 else max(size, REPORT_EVERY)
        block = self._view[self._pos : self._pos + step].tobytes()
        self._pos += len(block)
        if block:
            self._on_sent(self._pos)
        return block


class WireRequest(TusRequest):
    """One PATCH of one chunk through the shared session, with timeouts and progress."""

    def __init__(self, uploader: TusUploader) -> None:
        super().__init__(uploader)
        self._wire = uploader.wire

    def perform(self) -> None:
        with self.file:
            chunk = self.file.read(self._content_length)
        self.add_checksum(chunk)
        self._wire.on_sent(0)
        with network_errors():
            resp = self._wire.http.patch(
                self._url,
                data=ChunkBody(chunk, self._wire.on_sent),
                headers=self._request_headers,
                timeout=self._wire.timeout,
                verify=self.verify_tls_cert,
                cert=self.client_cert,
            )
        self.status_code = resp.status_code
        self.response_content = resp.content
        self.response_headers = {k.lower(): v for k, v in resp.headers.items()}
        self._wire.saw(self.response_headers)


class TusUploader(Uploader):
    """tuspy's Uploader speaking through a `Wire`; `wire` must exist before tuspy's __init__ runs."""

    def __init__(self, wire: Wire, **kwargs: Any) -> None:
        self.wire = wire
        self.stale = False
        super().__init__(retries=0, **kwargs)

    def get_file_size(self) -> int:
        """The size without leaving a file handle open (tuspy's version never closes it)."""
        return os.path.getsize(str(self.file_path))

    def get_offset(self) -> int:
        with network_errors():
            resp = self.wire.http.head(
                str(self.url),
                headers=self.get_headers(),
                timeout=self.wire.timeout,
                verify=self.verify_tls_cert,
                cert=self.client_cert,
            )
        offset = resp.headers.get("upload-offset")
        if resp.status_code >= 300 or offset is None:
            raise failure(resp.status_code, resp.content)
        self.wire.saw({k.lower(): v for k, v in resp.headers.items()})
        return int(offset)

    def create_url(self) -> str:
        assert self.client is not None
        endpoint: str = self.client.url
        with network_errors():
            resp = self.wire.http.post(
                endpoint,
                headers=self.get_url_creation_headers(),
                timeout=self.wire.timeout,
                verify=self.verify_tls_cert,
                cert=self.client_cert,
            )
        location = resp.headers.get("location")
        if resp.status_code >= 300 or location is None:
            raise failure(resp.status_code, resp.content)
        self.wire.saw({k.lower(): v for k, v in resp.headers.items()})
        return urljoin(endpoint, location)

    def _do_request(self) -> None:
        """tuspy's one PATCH, minus its retry (`reelout.client.uploader` decides about those)."""
        request = WireRequest(self)
        self.request = request  # type: ignore[assignment]  # tuspy declares it as None
        request.perform()
        status: int = request.status_code or 0
        if not 200 <= status < 300:
            raise failure(status, request.response_content)

    def send_next_chunk(self) -> None:
        """One attempt: after a failed one, re-read the server's offset; then PATCH a chunk."""
        if self.stale:
            self.offset = self.get_offset()
        self.stale = True
        if self.offset < self.stop_at:
            self.upload_chunk()
        self.stale = False
