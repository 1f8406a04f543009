"""What OFREP answers from: each environment's compiled flag set and the client keys, kept in
the process and re-checked against the database at most every REELOUT_FLAG_CHANGE_POLL_SECONDS.

An evaluation normally touches no database and no thread: the change watch (one query per poll,
whatever the traffic) confirms every cached set and key, drops a set whose environment moved on
and drops every key when one is revoked. A flag-set write in this process forgets that
environment's entry as soon as its transaction commits, so a change is answered by the next
request here and within one poll by every other process; a revoked key stops evaluating within
one poll. A process sends change events only after its cache has taken the new revision in, and
a re-fetch naming a newer revision (`flagConfigEtag`) is read from the database.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from reelout.auth import service as auth
from reelout.auth.key_cache import KeyCache
from reelout.auth.service import Principal
from reelout.db.engine import Database
from reelout.flags.admin import service
from reelout.flags.admin.changes import Head, Reading
from reelout.flags.engine.evaluator import FlagSet, parse_flag_set


@dataclass(frozen=True)
class Served:
    environment: str
    revision: int
    flags: FlagSet


@dataclass(frozen=True)
class _Checked:
    """A value and when (monotonic seconds) it was last read from the database."""

    served: Served | None = None
    at: float = 0.0


class ServingCache:
    """Keys (`keys`, by the SHA-256 of the secret) and compiled flag sets, confirmed by the change watch
    on every poll; an entry the watch has not confirmed for `trust` seconds is read again."""

    def __init__(self, poll_seconds: float) -> None:
        self.trust = max(20 * poll_seconds, 5.0)
        self.keys = KeyCache(self.trust)
        self._sets: dict[str, _Checked] = {}
        self._revocations: tuple[int, datetime | None] | None = None
        self._lock = threading.Lock()
        self._loading = threading.Lock()

    def fresh(self, secret: str) -> tuple[Served, Principal] | None:
        """The key's environment's flags from memory, or None: then `load` in a thread."""
        who = self.keys.known(secret)
        if who is None:
            return None
        entry = self._sets.get(who.environment or "")
        if entry is None or entry.served is None or time.monotonic() - entry.at > self.trust:
            return None
        return entry.served, who

    def remember(self, secret: str, who: Principal) -> None:
        self.keys.remember(secret, who)

    def load(self, session: Session, environment: str) -> Served:
        """Inside the caller's read: a revision lookup, and the set only after a change. Loads
        go one at a time, so a crowd arriving after a change compiles the new set once."""
        with self._loading:
            checked_at = time.monotonic()
            revision = service.head_revision(session, environment)
            cached = self._sets.get(environment)
            if cached is not None and cached.served and cached.served.revision == revision:
                served = cached.served
            else:
                stored = service.current(session, environment)
                served = Served(environment, stored.revision, parse_flag_set(stored.text))
            with self._lock:
                self._sets[environment] = _Checked(served=served, at=checked_at)
            return served

    def refresh(
        self,
        session: Session,
        heads: Iterable[Head],
        revocations: tuple[int, datetime | None],
        read_at: float,
    ) -> frozenset[str]:
        """The watch's reading (taken at monotonic `read_at`, in its session): a set still at
        its environment's head stays trusted, a set that moved on is compiled again here, before
        any app hears of the change; any new revocation drops every key. Returns the ids of keys revoked since the last reading
        (whose open event streams must end)."""
        revisions = {head.environment: head.revision for head in heads}
        for environment, entry in list(self._sets.items()):
            if entry.served is not None and entry.served.revision == revisions.get(environment, 0):
                with self._lock:
                    self._sets[environment] = replace(entry, at=max(entry.at, read_at))
            else:
                self.load(session, environment)
        revoked: frozenset[str] = frozenset()
        if self._revocations is not None and revocations != self._revocations:
            revoked = auth.revoked_after(session, self._revocations[1])
        if revocations != self._revocations:
            self.keys.forget_all()
            self._revocations = revocations
        else:
            self.keys.confirm(read_at)
        return revoked

    def forget(self, environment: str) -> None:
        """A write to the environment committed in this process: read it again next time (the
        compiled set is kept, for reuse if the revision turns out not to have moved)."""
        with self._lock:
            entry = self._sets.get(environment)
            if entry is not None:
                self._sets[environment] = replace(entry, at=-math.inf)


def serving_cache(state: Any) -> ServingCache:
    """The app's cache (`app.state.serving`, made by `flags.routes.install`)."""
    cache: ServingCache = state.serving
    return cache


def read_changes(db: Database, serving: ServingCache) -> Reading:
    """What the flag change feed polls: every environment's head revision and the keys revoked
    since the last poll; the serving cache takes them in before any stream hears of it."""
    read_at = time.monotonic()
    with db.read() as session:
        heads = service.heads(session)
        revocations = auth.revocations(session)
        revoked = serving.refresh(session, heads, revocations, read_at)
    return Reading(heads, revoked)
