"""Flag-set writes are heard by the app whose database committed them, once committed, and
by no other app in the process (the listeners are the app's, not a module-level list)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from reelout.auth.schemas import Scope
from reelout.auth.service import Principal
from reelout.db.engine import Database
from reelout.flags.admin import service
from reelout.flags.admin.writes import FlagWrites
from reelout.runtime import Runtime
from tests.flags.admin.conftest import FLAG_SET
from tests.support.settings import make_settings, start_runtime

WRITER = Principal("test-key", "release-manager", Scope.admin, None)


@pytest.fixture
def rt(tmp_path: Path, database_url: str) -> Iterator[Runtime]:
    runtime = start_runtime(make_settings(tmp_path, database_url=database_url))
    yield runtime
    runtime.db.dispose()


def write(db: Database, rt: Runtime, env: str) -> None:
    with db.session() as session:
        service.put_flag_set(session, rt.clock, env, FLAG_SET.encode(), service.Edit(WRITER))


def test_a_write_is_heard_once_committed_through_the_apps_own_database(rt: Runtime) -> None:
    heard: list[str] = []
    stop = FlagWrites(heard.append).attach(rt.db)
    with rt.db.session() as session:
        service.put_flag_set(
            session, rt.clock, "development", FLAG_SET.encode(), service.Edit(WRITER)
        )
        assert heard == []  # not before it commits
    assert heard == ["development"]
    stop()
    write(rt.db, rt, "preview")
    assert heard == ["development"]  # stopped: heard no more


def test_another_apps_writes_are_not_heard(rt: Runtime) -> None:
    other = Database(rt.settings.resolved_database_url)  # a second app's database, same tables
    mine: list[str] = []
    theirs: list[str] = []
    stops = [FlagWrites(mine.append).attach(rt.db), FlagWrites(theirs.append).attach(other)]
    try:
        write(other, rt, "preview")
        write(rt.db, rt, "development")
    finally:
        for stop in stops:
            stop()
        other.dispose()
    assert (mine, theirs) == (["development"], ["preview"])


def write_then_fail(rt: Runtime) -> None:
    with rt.db.session() as session:
        service.put_flag_set(
            session, rt.clock, "development", FLAG_SET.encode(), service.Edit(WRITER)
        )
        raise RuntimeError("the unit of work fails after the write")


def test_a_write_rolled_back_is_not_heard(rt: Runtime) -> None:
    heard: list[str] = []
    stop = FlagWrites(heard.append).attach(rt.db)
    with pytest.raises(RuntimeError):
        write_then_fail(rt)
    write(rt.db, rt, "preview")
    stop()
    assert heard == ["preview"]
