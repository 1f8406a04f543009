"""PostgreSQL LISTEN/NOTIFY: a signal a transaction sends on a channel when it commits, and a
thread per process that hears the channel. On SQLite (one host) there is nothing to hear: the
processes there poll.

Hand-written because it is a loop over psycopg's own `notifies()`; broadcast libraries bring a
broker of their own, and PostgreSQL already is the one every host shares.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import psycopg
from psycopg import sql
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

log = logging.getLogger("reelout.db")

CHANGES = "reelout_changes"
"""The channel of what the serving caches hold: flag-set writes (payload: the environment) and
key revocations (payload: empty)."""
RETRY_SECONDS = 1.0  # wait before a lost listening connection is opened again


def signal(session: Session, channel: str, payload: str = "") -> None:
    """Notify `channel` when `session`'s transaction commits (nothing on SQLite; PostgreSQL sends
    a payload once per transaction however often it is signalled)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_notify(channel, payload)))


def libpq_url(url: str) -> str:
    """A SQLAlchemy PostgreSQL URL as psycopg connects to it."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class Listener:
    """Calls `heard(payload)` for every notification on `channel`, from a thread of its own
    with its own connection, reopened after a loss (the caller's polling covers the gap)."""

    def __init__(self, url: str, channel: str, heard: Callable[[str], None]) -> None:
        self._url, self._channel, self._heard = libpq_url(url), channel, heard
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"listen-{channel}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop hearing: nothing is heard from now on, and the thread closes its connection
        within half a second (not waited for: a shutdown need not)."""
        self._stopped.set()

    def _run(self) -> None:
        failing = False
        while not self._stopped.is_set():
            try:
                self._listen()
                failing = False
            except psycopg.Error as exc:
                if not failing:
                    log.warning("LISTEN %s: connection lost (%s); retrying", self._channel, exc)
                failing = True
                self._stopped.wait(RETRY_SECONDS)

    def _listen(self) -> None:
        with psycopg.connect(self._url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._channel)))
            self._heard("")  # what was signalled while no connection listened: read it now
            while not self._stopped.is_set():
                for note in conn.notifies(timeout=0.5):
                    if not self._stopped.is_set():
                        self._heard(note.payload)
