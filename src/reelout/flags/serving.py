"""The compiled flag set of each environment, kept per process and recompiled when its revision
changes (one cheap revision read per request; the flag set itself is read only after a change)."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from reelout.flags import service
from reelout.flags.evaluator import FlagSet, parse_flag_set
from reelout.flags.models import FlagEnvironment

# The head revision as one column, not an ORM object: a third cheaper on every OFREP request.
_HEAD_REVISION = select(FlagEnvironment.revision).where(
    FlagEnvironment.name == bindparam("environment")
)


@dataclass(frozen=True)
class Served:
    environment: str
    revision: int
    flags: FlagSet


class CompiledSets:
    """environment -> the compiled flag set of its latest revision."""

    def __init__(self) -> None:
        self._sets: dict[str, Served] = {}
        self._lock = threading.Lock()

    def get(self, session: Session, environment: str) -> Served:
        """Inside the caller's read: a revision lookup, and the set only after a change."""
        revision = session.scalar(_HEAD_REVISION, {"environment": environment}) or 0
        cached = self._sets.get(environment)
        if cached is not None and cached.revision == revision:
            return cached
        stored = service.current(session, environment)
        served = Served(environment, stored.revision, parse_flag_set(stored.text))
        with self._lock:
            known = self._sets.get(environment)
            if known is None or known.revision < served.revision:
                self._sets[environment] = served
        return served
