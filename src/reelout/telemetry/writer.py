"""The ingest's writer: one thread per process stores every batch the HTTP ingest accepted, and
the batches that arrive while it writes go together into its next transaction (group commit).

Hand-written, because it is the ingest's hot path and a small one: with a thread-pool hop and a
transaction per request, requests queued for the database's one writer and paid a commit each;
here a request waits for the commit that holds its batch (an accepted event is still on disk
before its answer) and one commit serves every batch that arrived meanwhile. A transaction that
fails is tried again batch by batch, so one bad batch fails only its own request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import deque
from dataclasses import dataclass, field

from reelout.db.engine import Database
from reelout.errors import ServiceUnavailable
from reelout.telemetry.inserts import NewBatch, insert_new

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5
"""What a 503 EVENTS_NOT_STORED asks the client to wait before it sends the batch again."""


class EventsNotStored(ServiceUnavailable):
    """The database did not take the batch: none of it was accepted, and sending it again is
    safe (events are idempotent by event_id)."""

    code = "EVENTS_NOT_STORED"

    def __init__(self, why: str) -> None:
        super().__init__(
            f"the events could not be stored ({why}); none of this batch was accepted: send "
            f"it again after {RETRY_AFTER_SECONDS} s (events are idempotent by event_id), and "
            "if this lasts, the server's log says why the database refused the write",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )


@dataclass
class _Waiting:
    batch: NewBatch
    loop: asyncio.AbstractEventLoop
    done: asyncio.Future[set[str]] = field(repr=False)


class IngestWriter:
    """Started with the app (`start`), stopped with it (`stop`); `store` from the event loop."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._waiting: deque[_Waiting] = deque()
        self._ready = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopping = False

    def start(self) -> None:
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="telemetry-writer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Write what is waiting, then end the thread."""
        with self._ready:
            self._stopping = True
            self._ready.notify()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    async def store(self, new: NewBatch) -> set[str]:
        """The ids (32 hex digits) of the rows that were new, once their commit is done."""
        if not new.rows:
            return set()
        loop = asyncio.get_running_loop()
        batch = _Waiting(new, loop, loop.create_future())
        with self._ready:
            if self._thread is None:
                raise EventsNotStored("the server is shutting down")
            self._waiting.append(batch)
            self._ready.notify()
        return await batch.done

    def _run(self) -> None:
        while True:
            with self._ready:
                while not self._waiting and not self._stopping:
                    self._ready.wait()
                if not self._waiting:
                    return
                batches = list(self._waiting)
                self._waiting.clear()
            self._write(batches)

    def _write(self, batches: list[_Waiting]) -> None:
        try:
            with self._db.session() as session:
                connection = session.connection()
                results = [insert_new(connection, waiting.batch) for waiting in batches]
        except Exception:
            if len(batches) == 1:
                log.exception("telemetry: a batch could not be stored")
                _settle(batches[0], error=EventsNotStored("the database refused the write"))
                return
            for batch in batches:  # alone, so that one bad batch fails only its own request
                self._write([batch])
            return
        for batch, new in zip(batches, results, strict=True):
            _settle(batch, result=new)


def _settle(
    batch: _Waiting, result: set[str] | None = None, error: BaseException | None = None
) -> None:
    def settle() -> None:
        if batch.done.done():  # the request went away (cancelled) meanwhile
            return
        if error is not None:
            batch.done.set_exception(error)
        else:
            batch.done.set_result(result or set())

    with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
        batch.loop.call_soon_threadsafe(settle)


def ingest_writer(state: object) -> IngestWriter:
    """The app's writer (`app.state.telemetry_writer`, made and started by create_app)."""
    found: IngestWriter = state.telemetry_writer  # type: ignore[attr-defined]
    return found
