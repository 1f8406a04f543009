"""Readiness for load balancers (`/readyz`): whether the database and the stores answer."""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Mapping
from typing import Protocol, runtime_checkable

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from reelout.db.engine import Database

log = logging.getLogger("reelout.health")

Reason = dict[str, object]


@runtime_checkable
class Checkable(Protocol):
    """A part outside the process (an object store, say) that can tell whether it answers."""

    def check(self) -> str | None:
        """None when reachable, else a reason a person understands."""
        ...


class _Attempt:
    """One run of a check in a daemon thread of its own (a hung one never holds up the exit)."""

    def __init__(self, check: Callable[[], None]) -> None:
        self.done = threading.Event()
        self.error: Exception | None = None
        threading.Thread(target=self._run, args=(check,), name="readyz-db", daemon=True).start()

    def _run(self, check: Callable[[], None]) -> None:
        try:
            check()
        except Exception as exc:  # any driver error: the database cannot serve requests
            self.error = exc
        finally:
            self.done.set()


class DatabaseProbe:
    """`SELECT 1` within `timeout` seconds, one probe at a time.

    On PostgreSQL the probe has a connection of its own (its engine keeps one), opened with
    libpq's `connect_timeout` and run under a `statement_timeout`, so a busy pool never makes
    the server look unready. A database that stops answering mid-query (a dead host, a dropped
    network) is bounded by the caller's wait: the probe runs in a thread of its own, and while a
    hung probe is still running every later check waits on it, so no threads pile up."""

    def __init__(self, db: Database, timeout: float) -> None:
        self.timeout = timeout
        self._db = db
        self._engine = None if db.is_sqlite else _probe_engine(db.url, timeout)
        self._lock = threading.Lock()
        self._attempt: _Attempt | None = None

    def check(self) -> str | None:
        with self._lock:
            if self._attempt is None or self._attempt.done.is_set():
                self._attempt = _Attempt(self._select_one)
            attempt = self._attempt
        if not attempt.done.wait(self.timeout + 1):  # libpq rounds connect_timeout up
            return self._reason(f"no answer within {self.timeout:g} s")
        if attempt.error is not None:
            log.warning("readyz: the database check failed: %s", attempt.error)
            return self._reason(type(attempt.error).__name__)
        return None

    def _select_one(self) -> None:
        if self._engine is None:
            with self._db.read() as session:  # SQLite: a local file, no network to hang on
                session.execute(text("SELECT 1"))
            return
        with self._engine.connect() as conn:
            conn.execute(
                text("SELECT set_config('statement_timeout', :ms, true)"), {"ms": self._millis}
            )
            conn.execute(text("SELECT 1"))
            conn.rollback()

    @property
    def _millis(self) -> str:
        return str(math.ceil(self.timeout * 1000))

    def _reason(self, what: str) -> str:
        return (
            f"database: the readiness query failed ({what}): check that the database is up and "
            "reachable from this host at REELOUT_DATABASE_URL (the server's log has the error)"
        )

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()


def _probe_engine(url: str, timeout: float) -> Engine:
    """An engine of one connection, pinged before use, that gives up connecting in time."""
    return create_engine(
        url,
        pool_size=1,
        max_overflow=0,
        pool_timeout=timeout,
        pool_pre_ping=True,
        connect_args={"connect_timeout": max(2, math.ceil(timeout))},  # libpq's least is 2 s
    )


def store_reasons(stores: Mapping[str, object]) -> list[Reason]:
    """`check()` of each store that has one (an object store; local folders have none)."""
    reasons: list[Reason] = []
    for name, store in stores.items():
        if not isinstance(store, Checkable):
            continue
        reason = store.check()
        if reason is not None:
            message = f"storage ({name}): {reason}"
            reasons.append({"part": "storage", "code": "STORAGE_UNREACHABLE", "message": message})
    return reasons


def database_reasons(probe: DatabaseProbe) -> list[Reason]:
    reason = probe.check()
    if reason is None:
        return []
    return [{"part": "database", "code": "DATABASE_UNREACHABLE", "message": reason}]
