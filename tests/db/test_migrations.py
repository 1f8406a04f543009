"""Migrations build the schema the models describe, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

from reelout.db.base import Base
from reelout.db.migrate import current_heads, upgrade
from reelout.models import load_all
from reelout.runtime import Runtime
from tests.support.settings import make_settings, start_runtime


def test_migrations_match_the_models(tmp_path: Path, database_url: str) -> None:
    rt = start_runtime(make_settings(tmp_path, database_url=database_url))
    upgrade(rt.db)  # idempotent
    assert current_heads(rt.db) == {"0008"}
    load_all()
    with rt.db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == [], f"models and migrations disagree: {diff}"
    rt.db.dispose()


def test_0007_names_the_video_of_existing_webhook_events(tmp_path: Path, database_url: str) -> None:
    rt = Runtime.from_settings(make_settings(tmp_path, database_url=database_url))
    upgrade(rt.db, "0006")
    bodies = {
        "evt_a": '{"id":"evt_a","type":"video.ready","data":{"video":{"uid":"' + "a" * 32 + '"}}}',
        "evt_b": '{"id":"evt_b","type":"video.error","data":{}}',
    }
    insert = text(
        "INSERT INTO webhook_events (id, type, created_at, body) VALUES (:id, 'video.ready', :at, :body)"
    )
    with rt.db.engine.begin() as conn:
        for event_id, body in bodies.items():
            conn.execute(insert, {"id": event_id, "at": "2026-12-02 10:00:00", "body": body})
    upgrade(rt.db)
    with rt.db.engine.connect() as conn:
        rows = dict(conn.execute(text("SELECT id, video_uid FROM webhook_events")).all())
    assert rows == {"evt_a": "a" * 32, "evt_b": None}
    rt.db.dispose()
