"""What the uploader remembers between runs: upload URLs by file fingerprint, in a small JSON file.

Both halves plug into tuspy's own interfaces (`Storage`, `Fingerprint`) and replace its stock
implementations for two reasons. tuspy's `FileStorage` is TinyDB, which is safe neither across
threads (`--parallel`) nor across processes; this store serialises with a lock (a thread lock
plus `flock` on a side file) and rewrites the JSON atomically. tuspy's default fingerprint is the
file size plus an md5 of the first 64 KiB: it ignores the server and the file's modification
time, so a file edited in place, or sent to another server or order stage, would resume an upload
holding different bytes. Ours hashes the scope (server, order, stage), size, mtime and samples of
the head and tail.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from tusclient.fingerprint.interface import Fingerprint
from tusclient.storage.interface import Storage

if sys.platform != "win32":
    import fcntl

STATE_ENV = "REELOUT_CLIENT_STATE"
SAMPLE_BYTES = 64 * 1024
FORGET_AFTER_SECONDS = 14 * 86400  # far beyond any tus expiry: such entries can only be stale

Entries = dict[str, dict[str, Any]]


def default_state_path() -> Path:
    """`$REELOUT_CLIENT_STATE`, else `$XDG_DATA_HOME/reelout/uploads.json` (~/.local/share)."""
    if explicit := os.environ.get(STATE_ENV):
        return Path(explicit).expanduser()
    data_home = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(data_home) / "reelout" / "uploads.json"


class FileFingerprint(Fingerprint):
    """A key for "this exact file, going to this exact place" (tuspy's Fingerprint interface)."""

    def __init__(self, scope: str) -> None:
        self.scope = scope

    def get_fingerprint(self, fs: IO[bytes]) -> str:
        info = os.fstat(fs.fileno())
        digest = hashlib.sha256(f"{self.scope}\n{info.st_size}\n{info.st_mtime_ns}\n".encode())
        fs.seek(0)
        digest.update(fs.read(SAMPLE_BYTES))
        if info.st_size > SAMPLE_BYTES:
            fs.seek(max(SAMPLE_BYTES, info.st_size - SAMPLE_BYTES))
            digest.update(fs.read(SAMPLE_BYTES))
        return "reelout-v1:" + digest.hexdigest()


class UrlStore(Storage):
    """Upload URLs keyed by fingerprint in one JSON file (tuspy's Storage interface)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def get_item(self, key: str) -> str | None:
        entry = self._read().get(key)
        return str(entry["url"]) if entry else None

    def set_item(self, key: str, value: str) -> None:
        self._update(lambda entries: entries.update({key: {"url": value, "saved": time.time()}}))

    def remove_item(self, key: str) -> None:
        self._update(lambda entries: entries.pop(key, None))

    def items(self) -> dict[str, str]:
        return {key: str(entry["url"]) for key, entry in self._read().items()}

    def _read(self) -> Entries:
        with self._locked():
            return self._load()

    def _update(self, change: Callable[[Entries], object]) -> None:
        with self._locked():
            entries = self._load()
            change(entries)
            oldest = time.time() - FORGET_AFTER_SECONDS
            self._save({k: v for k, v in entries.items() if v.get("saved", 0) >= oldest})

    def _load(self) -> Entries:
        try:
            data = json.loads(self.path.read_text("utf-8"))
        except (FileNotFoundError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _save(self, entries: Entries) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".uploads-", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(entries, fh, indent=1, sort_keys=True)
        os.replace(tmp, self.path)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock, open(self.path.with_name(self.path.name + ".lock"), "a") as lock_file:
            if sys.platform != "win32":
                fcntl.flock(lock_file, fcntl.LOCK_EX)
            yield
