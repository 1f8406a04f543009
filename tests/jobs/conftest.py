"""Fixtures for the jobs tests: a migrated runtime on SQLite or PostgreSQL with a manual clock."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from reelout.clock import Clock, ManualClock
from reelout.runtime import Runtime
from tests.jobs.jobs_support import RuntimeFactory
from tests.support.settings import make_settings, start_runtime


@pytest.fixture
def new_runtime(database_url: str, tmp_path: Path) -> Iterator[RuntimeFactory]:
    """Builds runtimes on the test database (each with its own engine), disposed at teardown."""
    made: list[Runtime] = []

    def build(clock: Clock, **overrides: object) -> Runtime:
        values: dict[str, object] = {"job_lease_seconds": 30.0, "job_poll_seconds": 0.02}
        values.update(overrides)
        settings = make_settings(tmp_path, database_url=database_url, **values)
        runtime = start_runtime(settings, clock)
        made.append(runtime)
        return runtime

    yield build
    for runtime in made:
        runtime.db.dispose()


@pytest.fixture
def rt(new_runtime: RuntimeFactory, clock: ManualClock) -> Runtime:
    """The usual runtime: test database, ManualClock (2026-01-01), 30 s leases."""
    return new_runtime(clock)
