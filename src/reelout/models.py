"""Every domain's tables in one place, so `Base.metadata` knows them all (Alembic, the checks)."""

from __future__ import annotations


def load_all() -> None:
    """Import every domain's models; the generic db layer names none of them itself."""
    import reelout.alerts.models
    import reelout.audit.models
    import reelout.auth.models
    import reelout.flags.admin.models
    import reelout.flags.exposures.models
    import reelout.flags.governance.models
    import reelout.jobs.models
    import reelout.media.models
    import reelout.rollouts.models
    import reelout.telemetry.models
    import reelout.uploads.models
    import reelout.webhooks.models  # noqa: F401
