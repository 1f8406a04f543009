"""Database access: engine and sessions, shared metadata, Alembic migrations."""

from reelout.db.base import Base, UTCDateTime
from reelout.db.engine import Database

__all__ = ["Base", "Database", "UTCDateTime"]
