"""Migrations build the schema the models describe, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from reelout.db.base import Base
from reelout.db.migrate import current_heads, upgrade
from reelout.models import load_all
from tests.support.settings import make_settings, start_runtime


def test_migrations_match_the_models(tmp_path: Path, database_url: str) -> None:
    rt = start_runtime(make_settings(tmp_path, database_url=database_url))
    upgrade(rt.db)  # idempotent
    assert current_heads(rt.db) == {"0007"}
    load_all()
    with rt.db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == [], f"models and migrations disagree: {diff}"
    rt.db.dispose()
