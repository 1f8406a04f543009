"""Flag governance: scheduled changes (and the job that applies them) and the stale-flag report."""
