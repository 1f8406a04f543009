"""What every process does before it serves or runs a command: migrate, ensure an admin key,
then the first-start steps its caller passes (the flag template seed)."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.orm import Session

from reelout.auth import service as auth_service
from reelout.clock import Clock
from reelout.config import Settings
from reelout.context import Core
from reelout.db.migrate import upgrade

FirstStart = Callable[[Session, Clock, Settings], object]
"""A step every start runs after the admin key exists; it must be idempotent (e.g.
`reelout.flags.admin.service.seed_on_start`). Passed in by the caller, so this module imports
no domain that itself starts processes (the flags CLI calls `prepare`)."""


def prepare(rt: Core, *first_start: FirstStart) -> None:
    """Migrate the database, make sure an admin key exists (printing a new one once) and run the
    first-start steps in the same unit of work."""
    upgrade(rt.db)
    settings = rt.settings
    with rt.db.session() as session:
        generated = auth_service.bootstrap_admin(
            session,
            rt.clock,
            token=settings.admin_token,
            key_file=settings.admin_key_file,
            environments=settings.environments,
        )
        for step in first_start:
            step(session, rt.clock, settings)
    if generated:
        print(
            f"Created the first admin key (saved to {settings.admin_key_file}, mode 0600):\n"
            f"  {generated}"
        )
