"""Keys already checked, kept in the process by the SHA-256 of their secret, so that the hot
client-key paths (OFREP, telemetry) answer without a database read: an entry is trusted for
`trust` seconds, each reading of the flags' change watch confirms them all, and any new
revocation forgets them all (a revoked key stops working within one poll)."""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass
from typing import Any

from reelout.auth.service import Principal


@dataclass(frozen=True, slots=True)
class _Known:
    who: Principal
    at: float  # monotonic seconds of the last database reading that confirmed it


class KeyCache:
    """Principals by secret digest; see the module docstring for when they are trusted."""

    def __init__(self, trust: float) -> None:
        self.trust = trust
        self._known: dict[str, _Known] = {}
        self._lock = threading.Lock()

    def known(self, secret: str) -> Principal | None:
        """The key's principal from memory, or None: then authenticate and `remember`."""
        entry = self._known.get(_digest(secret))
        if entry is None or time.monotonic() - entry.at > self.trust:
            return None
        return entry.who

    def remember(self, secret: str, who: Principal) -> None:
        with self._lock:
            self._known[_digest(secret)] = _Known(who, time.monotonic())

    def confirm(self, read_at: float) -> None:
        """The change watch read the keys' revocations at monotonic `read_at`: none changed."""
        with self._lock:
            for digest, entry in list(self._known.items()):
                self._known[digest] = _Known(entry.who, max(entry.at, read_at))

    def forget_all(self) -> None:
        """A key was revoked: every key is read again before it is trusted."""
        with self._lock:
            self._known.clear()


def key_cache(state: Any) -> KeyCache:
    """The app's cache of client keys (`app.state.keys`, made with the flags' serving cache)."""
    cache: KeyCache = state.keys
    return cache


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()
