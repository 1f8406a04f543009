"""What a domain may ask of the process it runs in: settings, database, clock, the server's secret.

Domains type their dependencies with these protocols (and their own narrower ones built on
them) instead of importing the `Runtime` that satisfies them, so they sit below the composition
root (`runtime`, `app`, `tasks`, the CLI) rather than in one import cycle with it.
"""

from __future__ import annotations

from typing import Protocol

from reelout.clock import Clock
from reelout.config import Settings
from reelout.db.engine import Database


class Core(Protocol):
    """Settings, database and clock: what every domain (and the job layer) uses."""

    @property
    def settings(self) -> Settings: ...

    @property
    def db(self) -> Database: ...

    @property
    def clock(self) -> Clock: ...


class Signing(Core, Protocol):
    """Core plus the server's secret, for what a domain signs or seals (tokens, cookies, secrets)."""

    @property
    def secret(self) -> str: ...
