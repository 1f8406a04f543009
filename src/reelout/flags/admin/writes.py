"""Flag-set writes heard in this process: the service marks what a unit of work wrote, and an
app's `FlagWrites` tells its listeners once that unit of work has committed (the CLI has none)."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.orm import Session

from reelout.db import notify
from reelout.db.engine import Database

WRITTEN = "reelout.flags.written"
"""The key in `Session.info` of the environments whose flag sets the unit of work wrote."""

Listener = Callable[[str], None]


def mark(session: Session, environment: str) -> None:
    """Record that `session` wrote `environment`'s flag set (heard once it commits, in this
    process by its `FlagWrites`, in every other on PostgreSQL by its NOTIFY)."""
    written: set[str] = session.info.setdefault(WRITTEN, set())
    if environment not in written:
        notify.signal(session, notify.CHANGES, environment)
    written.add(environment)


class FlagWrites:
    """One app's listeners of committed flag-set writes: each is called with the environment
    (the OFREP serving cache forgets it, the change feed is poked)."""

    def __init__(self, *listeners: Listener) -> None:
        self.listeners = listeners

    def attach(self, db: Database) -> Callable[[], None]:
        """Hear the writes committed through `db` from now on; returns what stops it."""
        return db.on_commit(self.committed)

    def committed(self, session: Session) -> None:
        written: set[str] = session.info.pop(WRITTEN, set())
        for environment in sorted(written):
            for listener in self.listeners:
                listener(environment)
