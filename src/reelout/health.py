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

    def __init__(self, check: Callable[[], str | None]) -> None:
        self.done = threading.Event()
        self.reason: str | None = None
        self.error: Exception | None = None
        threading.Thread(target=self._run, args=(check,), name="readyz", daemon=True).start()

    def _run(self, check: Callable[[], str | None]) -> None:
        try:
            self.reason = check()
        except Exception as exc:  # any error: the part cannot serve requests
            self.error = exc
        finally:
            self.done.set()


class CheckFailed(Exception):
    """A check that did not answer in time, or raised: what happened, for a reason."""


class SingleFlight:
    """A check (None, or a reason) that takes at most `wait` seconds to answer for, whatever
    the part it asks does: it runs in a thread of its own, one run at a time, and while a hung
    run is still going every later call waits on that one, so no threads pile up."""

    def __init__(self, check: Callable[[], str | None], wait: float) -> None:
        self.check, self.wait = check, wait
        self._lock = threading.Lock()
        self._attempt: _Attempt | None = None

    def __call__(self) -> str | None:
        """The check's answer; CheckFailed when it took too long or raised."""
        with self._lock:
            if self._attempt is None or self._attempt.done.is_set():
                self._attempt = _Attempt(self.check)
            attempt = self._attempt
        if not attempt.done.wait(self.wait):
            raise CheckFailed(f"no answer within {self.wait:g} s")
        if attempt.error is not None:
            log.warning("readyz: a check failed: %r", attempt.error)
            raise CheckFailed(f"{type(attempt.error).__name__}, in the server's log")
        return attempt.reason


class DatabaseProbe:
    """`SELECT 1` within `timeout` seconds (a `SingleFlight`).

    On PostgreSQL the probe has a connection of its own (its engine keeps one), opened with
    libpq's `connect_timeout` and run under a `statement_timeout`, so a busy pool never makes
    the server look unready; a database that stops answering mid-query (a dead host, a dropped
    network) is bounded by the single flight's wait."""

    def __init__(self, db: Database, timeout: float) -> None:
        self._db = db
        self._engine = None if db.is_sqlite else _probe_engine(db.url, timeout)
        self._millis = str(math.ceil(timeout * 1000))
        self._flight = SingleFlight(self._select_one, timeout + 1)  # libpq rounds up

    def check(self) -> str | None:
        try:
            return self._flight()
        except CheckFailed as failed:
            return (
                f"database: the readiness query failed ({failed}): check that the database is "
                "up and reachable from this host at REELOUT_DATABASE_URL"
            )

    def _select_one(self) -> str | None:
        if self._engine is None:
            with self._db.read() as session:  # SQLite: a local file, no network to hang on
                session.execute(text("SELECT 1"))
            return None
        with self._engine.connect() as conn:
            conn.execute(
                text("SELECT set_config('statement_timeout', :ms, true)"), {"ms": self._millis}
            )
            conn.execute(text("SELECT 1"))
            conn.rollback()
        return None

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()


class StoreChecks:
    """The `check()` of each distinct Checkable store (an object store; local folders have
    none), each a `SingleFlight` of `wait` seconds."""

    def __init__(self, wait: float) -> None:
        self.wait = wait
        self._flights: dict[str, tuple[Checkable, SingleFlight]] = {}

    def reasons(self, stores: Mapping[str, object]) -> list[Reason]:
        reasons: list[Reason] = []
        seen: set[int] = set()
        for name, store in stores.items():
            if not isinstance(store, Checkable) or id(store) in seen:
                continue
            seen.add(id(store))
            try:
                reason = self._flight(name, store)()
            except CheckFailed as failed:
                reason = (
                    f"storage ({name}): its check failed ({failed}): check the store's endpoint "
                    "(AWS_ENDPOINT_URL), its credentials and the network from this host"
                )
            if reason is not None:
                reasons.append(_store_reason(name, reason))
        return reasons

    def _flight(self, name: str, store: Checkable) -> SingleFlight:
        known = self._flights.get(name)
        if known is None or known[0] is not store:
            known = self._flights[name] = (store, SingleFlight(store.check, self.wait))
        return known[1]


def _store_reason(name: str, reason: str) -> Reason:
    message = reason if reason.startswith("storage") else f"storage ({name}): {reason}"
    return {"part": "storage", "code": "STORAGE_UNREACHABLE", "store": name, "message": message}


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


def database_reasons(probe: DatabaseProbe) -> list[Reason]:
    reason = probe.check()
    if reason is None:
        return []
    return [{"part": "database", "code": "DATABASE_UNREACHABLE", "message": reason}]
