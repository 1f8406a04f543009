"""Feature flags: flagd-compatible flag sets, served over OFREP. One sub-package per concern:

- `engine/`: the pure core (evaluation, JsonLogic, fractional, semver, validation, templates,
  stale analysis); it imports neither the database nor the web framework.
- `admin/`: flag-set administration (revisions, edits, audit: models/schemas/service/routes) and
  the change feed.
- `serving/`: what apps call: OFREP, the serving cache it answers from, change streams, sync.
- `governance/`: scheduled changes (and their job) and the stale-flag report.
- `exposures/`: the exposure log (recorder, counts, retention) and its routes.
- `cli/`: `reelout flags` on the command line.
- `routes.install(app, rt)`: mounts all of it in the web app (routers, app state, start and stop).

This package re-exports the engine's API only, so the client SDK imports no server code.
"""

from reelout.flags.engine.evaluator import (
    ErrorCode,
    FlagSet,
    FlagSetError,
    Reason,
    Resolution,
    evaluate,
    parse_flag_set,
)

__all__ = [
    "ErrorCode",
    "FlagSet",
    "FlagSetError",
    "Reason",
    "Resolution",
    "evaluate",
    "parse_flag_set",
]
