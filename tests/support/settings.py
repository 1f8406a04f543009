"""Settings for tests: a temporary data folder, the suite's admin token, a migrated runtime."""

from __future__ import annotations

from pathlib import Path

from reelout.clock import Clock
from reelout.config import Settings
from reelout.db.migrate import upgrade
from reelout.runtime import Runtime

ADMIN_TOKEN = "rlo_admin_f4T9cUmpwEG2BeHCs3xf8oGEMI4uowUhl9-6B3z3UBA"  # strong: passes start-up


def make_settings(tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "data_dir": tmp_path / "data",
        "admin_token": ADMIN_TOKEN,
        "embedded_worker": False,
        # the suite logs in to shared servers far more often than a person would; the tests of
        # the login limit set their own
        "console_login_attempts_per_minute": 0,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def start_runtime(settings: Settings, clock: Clock | None = None) -> Runtime:
    rt = Runtime.from_settings(settings, clock)
    upgrade(rt.db)
    return rt
