"""Flag-set administration: stored revisions per environment, edits, audit, and the change feed."""
