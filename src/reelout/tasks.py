"""Wires every domain's job handlers and periodic schedules into one Registry for the workers."""

from __future__ import annotations

import importlib
import logging

from reelout.jobs.registry import Registry
from reelout.runtime import Runtime

log = logging.getLogger("reelout.jobs")

# Each module exposes `register(registry: Registry) -> None`.
DOMAIN_JOB_MODULES = (
    "reelout.jobs.maintenance",
    "reelout.uploads.jobs",
    "reelout.media.jobs",
    "reelout.webhooks.jobs",
    "reelout.flags.governance.jobs",
    "reelout.telemetry.jobs",
    "reelout.alerts.jobs",
    "reelout.rollouts.jobs",
)


def build_registry() -> Registry[Runtime]:
    """Every domain's handlers and schedules, for the workers `serve` and `worker` start."""
    registry: Registry[Runtime] = Registry()
    for name in DOMAIN_JOB_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:  # the module exists but something it imports is missing
                raise
            log.debug("no job module %s; skipped", name)
            continue
        module.register(registry)
    return registry
