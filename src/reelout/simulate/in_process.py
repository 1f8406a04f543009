"""The synthetic apps that evaluate the flag in process: Reelout's Python SDK
(`reelout.client.flags`) on the flag set it syncs with a server key and keeps current by the
change stream, and the exposures reported by the app itself (`POST /api/v1/exposures`), as a
backend that evaluates flags locally does."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import FlagResolutionDetails

from reelout.client.flags import ReeloutProvider

EXPOSURES_PER_BATCH = 500  # under the server's REELOUT_EXPOSURE_MAX_BATCH default (1000)


class NoVariant(RuntimeError):
    """The in-process SDK served the code default (no flag set yet, or the flag is missing)."""


# the SDK's typed resolvers, tried in turn until one fits the flag's variants (a rehearsal may
# roll out any flag); each with its code default
_KINDS: tuple[tuple[str, Any], ...] = (
    ("resolve_boolean_details", False),
    ("resolve_string_details", ""),
    ("resolve_float_details", 0.0),
    ("resolve_object_details", {}),
)


class InProcess:
    """The SDK evaluates the flag from the synced flag set (kept current by the change stream);
    the app reports its exposures in batches."""

    def __init__(self, url: str, server_key: str, flag: str) -> None:
        self.flag = flag
        self.provider = ReeloutProvider(url, server_key, poll_interval=1.0)
        self.provider.initialize(EvaluationContext())
        self.api = httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {server_key}"}, timeout=30
        )
        self._kind = 0

    def variant(self, viewer: str) -> str:
        context = EvaluationContext(viewer)
        for index in range(self._kind, len(_KINDS)):
            name, default = _KINDS[index]
            details: FlagResolutionDetails[Any] = getattr(self.provider, name)(
                self.flag, default, context
            )
            if details.error_code != ErrorCode.TYPE_MISMATCH:
                self._kind = index
                break
        if details.variant is None:
            raise NoVariant(
                f"the in-process SDK served no variant of {self.flag}: "
                f"{details.error_code} {details.error_message or ''}".strip()
            )
        return str(details.variant)

    def report(self, seen: Sequence[tuple[str, str]]) -> None:
        items = [{"flag": self.flag, "variant": v, "targetingKey": k} for k, v in seen]
        for start in range(0, len(items), EXPOSURES_PER_BATCH):
            batch = {"exposures": items[start : start + EXPOSURES_PER_BATCH]}
            self.api.post("/api/v1/exposures", json=batch).raise_for_status()

    def close(self) -> None:
        self.provider.shutdown()
        self.api.close()
