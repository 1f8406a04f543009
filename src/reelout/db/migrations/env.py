"""Alembic environment: runs against the engine handed over by reelout.db.migrate."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Engine

from reelout.db.base import Base
from reelout.models import load_all

load_all()
engine: Engine = context.config.attributes["engine"]

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=engine.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
