"""What a unit of work established about videos (an upload ended, processing ended), kept on its
session and told to the app's listeners once it commits: a rolled-back change is never told.

The media service notes each fact where it happens; `told(session)` gives a committed session's
facts to whoever listens through `Database.on_commit` (the Prometheus metrics do)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

FACTS = "reelout.media.facts"
"""The key in `Session.info` of the facts the unit of work established, in order."""


@dataclass(frozen=True)
class UploadEnded:
    """A video's upload ended: its whole original arrived (`error_code` None), or it never will
    (terminated, expired, abandoned, or a streamed body that failed and was discarded)."""

    source: str  # the video's source: tus | direct | legacy
    error_code: str | None = None


@dataclass(frozen=True)
class ProcessingEnded:
    """A processing run ended: a version was published (`error_code` None) or it failed."""

    error_code: str | None = None


Fact = UploadEnded | ProcessingEnded


def note(session: Session, fact: Fact) -> None:
    """Record that `session`'s unit of work established `fact` (told once it commits)."""
    noted: list[Fact] = session.info.setdefault(FACTS, [])
    noted.append(fact)


def told(session: Session) -> tuple[Fact, ...]:
    """The facts a committed unit of work established (read-only: every listener sees them)."""
    return tuple(session.info.get(FACTS, ()))
