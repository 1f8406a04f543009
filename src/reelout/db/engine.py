"""Engine and session factory for SQLite (WAL, embedded default) or PostgreSQL, chosen by URL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

from reelout.db.writer_turn import WriterTurn

BUSY_TIMEOUT_MS = 30_000  # how long a writer waits for another to finish


def _normalise_url(url: str) -> str:
    """Let `postgresql://` mean psycopg 3, the driver we ship."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def _lock_file(database: str | None) -> Path | None:
    """The lock file the writers of an SQLite database file take turns on (none in memory)."""
    if not database or database == ":memory:":
        return None
    return Path(f"{database}-writer.lock")


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_begin(conn: Any) -> None:
    # Writers take the write lock at BEGIN, so read-then-write never fails to upgrade;
    # read-only units of work use a plain (deferred) BEGIN and never wait for writers.
    readonly = conn.get_execution_options().get(READONLY, False)
    conn.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")


READONLY = "reelout_readonly"


class Database:
    """One engine plus its session factory; `session()` is a unit of work that commits on exit."""

    def __init__(self, url: str) -> None:
        self.url = _normalise_url(url)
        parsed = make_url(self.url)
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        self.engine: Engine = self._create_engine(parsed.database)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._readers = sessionmaker(
            self.engine.execution_options(**{READONLY: True}), expire_on_commit=False
        )
        # SQLite has one writer at a time: each waits for its turn (db.writer_turn)
        self._turn = (
            WriterTurn(_lock_file(parsed.database), BUSY_TIMEOUT_MS / 1000)
            if self.is_sqlite
            else None
        )

    def _create_engine(self, database: str | None) -> Engine:
        if not self.is_sqlite:
            return create_engine(self.url, pool_pre_ping=True, pool_size=10, max_overflow=20)
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            self.url, connect_args={"check_same_thread": False, "isolation_level": None}
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._write_turn(), self._sessions() as session, session.begin():
            yield session

    def _write_turn(self) -> AbstractContextManager[None]:
        return self._turn.taken() if self._turn else nullcontext()

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A unit of work that only reads: on SQLite it never waits for the write lock."""
        with self._readers() as session, session.begin():
            yield session

    def on_commit(self, listener: Callable[[Session], None]) -> Callable[[], None]:
        """Call `listener` with each `session()` once it has committed; returns its remover."""
        event.listen(self._sessions, "after_commit", listener)
        return lambda: event.remove(self._sessions, "after_commit", listener)

    def dispose(self) -> None:
        self.engine.dispose()
        if self._turn:
            self._turn.close()
