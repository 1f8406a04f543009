"""What every process does before it serves or runs a command: migrate, ensure an admin key."""

from __future__ import annotations

from reelout.auth import service as auth_service
from reelout.context import Core
from reelout.db.migrate import upgrade


def prepare(rt: Core) -> None:
    """Migrate the database and make sure an admin key exists (printing a new one once)."""
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
    if generated:
        print(
            f"Created the first admin key (saved to {settings.admin_key_file}, mode 0600):\n"
            f"  {generated}"
        )
