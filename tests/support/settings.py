"""Settings for tests: a temporary data folder, the suite's admin token, a migrated runtime.

A test's SQLite database starts as a copy of one migrated once per test process: running every
migration again for each test's fresh database cost about half a second a test (tests/db runs
the migrations themselves, on SQLite and PostgreSQL)."""

from __future__ import annotations

import shutil
import tempfile
from functools import cache
from pathlib import Path

from sqlalchemy.engine import make_url

from reelout.clock import Clock
from reelout.config import Settings
from reelout.db.migrate import upgrade
from reelout.runtime import Runtime

ADMIN_TOKEN = "rlo_admin_f4T9cUmpwEG2BeHCs3xf8oGEMI4uowUhl9-6B3z3UBA"  # strong: passes start-up


def make_settings(tmp_path: Path, *, blank: bool = False, **overrides: object) -> Settings:
    """`blank`: the SQLite database starts empty (for the tests of the migrations)."""
    values: dict[str, object] = {
        "data_dir": tmp_path / "data",
        "admin_token": ADMIN_TOKEN,
        "embedded_worker": False,
        # the suite logs in to shared servers far more often than a person would; the tests of
        # the login limit set their own
        "console_login_attempts_per_minute": 0,
    }
    values.update(overrides)
    settings = Settings(**values)  # type: ignore[arg-type]
    if not blank:
        _start_migrated(settings)
    return settings


def _start_migrated(settings: Settings) -> None:
    """A new SQLite database file begins as the migrated template (nothing else is copied)."""
    url = make_url(settings.resolved_database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return
    database = Path(url.database)
    if not database.exists():
        database.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        shutil.copyfile(_migrated_template(), database)
        database.chmod(0o600)  # as the server makes it


@cache
def _migrated_template() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="reelout-template-"))
    rt = Runtime.from_settings(Settings(data_dir=folder, admin_token=ADMIN_TOKEN))
    upgrade(rt.db)
    rt.db.dispose()
    return folder / "reelout.db"


def start_runtime(settings: Settings, clock: Clock | None = None) -> Runtime:
    rt = Runtime.from_settings(settings, clock)
    upgrade(rt.db)
    return rt
