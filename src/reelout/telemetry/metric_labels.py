"""The label values a metric may take, pure: fixed sets, and first-come caps on the open ones.

Every label set a Prometheus client is given becomes a time series that lives as long as the
process, so a label fed from outside (a flag key, an error code, an event type) must be bounded.
Fixed sets (HTTP methods, status classes, upload methods) map the rest to `other`; open sets
keep the names of the first `limit` distinct values per scope and count every later one as
`other`. A value once named keeps its name: counters never move between series.

Hand-written: prometheus-client has no cardinality limit, and the rule is a dozen lines.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable
from typing import Generic, TypeVar

OTHER = "other"
UNMATCHED = "unmatched"  # the route of a request no route answered (a 404, a middleware's reply)
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# a video's `source` -> the upload method telemetry events name (`base64`: the legacy JSON body)
UPLOAD_METHODS = {"tus": "tus", "direct": "direct", "legacy": "base64"}

V = TypeVar("V", bound=Hashable)


class FirstSeen(Generic[V]):
    """Per scope, the first `limit` distinct values keep their names; later ones become `other`.

    Thread-safe; memory is bounded by scopes times `limit` (scopes are environments, or one)."""

    def __init__(self, limit: int, other: V) -> None:
        self.limit, self.other = limit, other
        self._named: dict[str, set[V]] = {}
        self._lock = threading.Lock()

    def label(self, value: V, scope: str = "") -> V:
        with self._lock:
            named = self._named.setdefault(scope, set())
            if value in named:
                return value
            if len(named) < self.limit:
                named.add(value)
                return value
            return self.other

    def named(self, scope: str = "") -> frozenset[V]:
        """The values that kept their names in `scope`."""
        with self._lock:
            return frozenset(self._named.get(scope, ()))


def http_method(method: str) -> str:
    """A request's method as a label: the methods the API answers, else `other` (a client may
    send any token there)."""
    return method if method in HTTP_METHODS else OTHER


def status_class(status: int) -> str:
    """`2xx` for 200 to 299 and so on; `other` outside 100 to 599."""
    return f"{status // 100}xx" if 100 <= status <= 599 else OTHER


def upload_method(source: str) -> str:
    """A video's source (`tus`, `direct`, `legacy`) as the upload method: tus, direct, base64."""
    return UPLOAD_METHODS.get(source, OTHER)
