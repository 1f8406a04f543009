"""A small SSE reader for tests: events of a live stream, read in a thread, taken with a deadline."""

from __future__ import annotations

import queue
import threading

import httpx
from httpx_sse import EventSource, ServerSentEvent

from reelout.client.flags import hang_up

WAIT = 15.0  # seconds before a test gives up waiting for an event (a hang guard, not a figure)


class EventStream:
    """Opens `url` and reads its events (httpx-sse) in a thread as they arrive; `.status` and
    `.response` are the response's."""

    def __init__(self, client: httpx.Client, url: str, headers: dict[str, str] | None = None):
        self._events: queue.Queue[ServerSentEvent | None] = queue.Queue()
        self._context = client.stream(
            "GET", url, headers=headers, timeout=httpx.Timeout(5, read=60)
        )
        self.response = self._context.__enter__()
        self.status = self.response.status_code
        self._thread = threading.Thread(target=self._read, daemon=True)
        if self.status == 200:
            self._thread.start()

    def _read(self) -> None:
        try:
            for event in EventSource(self.response).iter_sse():
                self._events.put(event)
        except (httpx.HTTPError, RuntimeError):
            pass
        finally:
            self._events.put(None)

    def next(self, wait: float = WAIT) -> ServerSentEvent:
        """The next event (comments-only events included); fails the test after `wait` s."""
        event = self._events.get(timeout=wait)
        assert event is not None, "the stream ended"
        return event

    def next_change(self, wait: float = WAIT) -> ServerSentEvent:
        """The next event that carries data (pings and greetings skipped)."""
        while True:
            event = self.next(wait)
            if event.data:
                return event

    def ends(self, wait: float = WAIT) -> bool:
        """True once the server ends the stream (pings and greetings skipped)."""
        while True:
            event = self._events.get(timeout=wait)
            if event is None:
                return True
            if event.data:
                return False

    def quiet_for(self, seconds: float) -> bool:
        """True when no data event arrives within `seconds` (pings don't count)."""
        try:
            while True:
                event = self._events.get(timeout=seconds)
                if event is None or event.data:
                    return False
        except queue.Empty:
            return True

    def close(self) -> None:
        """Hang up: the socket is shut down under the reading thread, as a client going away."""
        hang_up(self.response)
        self._thread.join(timeout=5) if self._thread.is_alive() else None
        self._context.__exit__(None, None, None)

    def __enter__(self) -> EventStream:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
