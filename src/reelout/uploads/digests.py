"""Running SHA-256 digests of uploads in progress, so finishing never re-reads the file."""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Any

Hasher = Any  # hashlib's hash objects have no public type


class RunningDigests:
    """Per upload: (bytes hashed, hasher). Process-local; a miss means "re-read at the end"."""

    def __init__(self, capacity: int = 10_000) -> None:
        self.capacity = capacity
        self._items: OrderedDict[str, tuple[int, Hasher]] = OrderedDict()

    def resume(self, upload_id: str, offset: int) -> Hasher | None:
        """The hasher to continue from `offset`; the caller owns it until it calls `keep`."""
        entry = self._items.pop(upload_id, None)
        if offset == 0:
            return hashlib.sha256()
        if entry is not None and entry[0] == offset:
            return entry[1]
        return None

    def keep(self, upload_id: str, offset: int, hasher: Hasher) -> None:
        self._items[upload_id] = (offset, hasher)
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)

    def take(self, upload_id: str, length: int) -> str | None:
        """The finished upload's hex digest if every byte went through this process."""
        entry = self._items.pop(upload_id, None)
        if entry is None or entry[0] != length:
            return None
        digest: str = entry[1].hexdigest()
        return digest
