"""Who counts what OFREP served besides the exposure log: the app's evaluation counter (its
Prometheus metrics put one on `app.state.flag_evaluations`); none when metrics are off."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from reelout.flags.engine.evaluator import Resolution


class EvaluationCounter(Protocol):
    def evaluated(self, environment: str, resolved: Sequence[tuple[str, Resolution]]) -> None: ...


class _NotCounted:
    def evaluated(self, environment: str, resolved: Sequence[tuple[str, Resolution]]) -> None:
        return None


NOT_COUNTED = _NotCounted()


def evaluation_counter(app_state: Any) -> EvaluationCounter:
    """The app's evaluation counter, or one that counts nothing."""
    found: EvaluationCounter = getattr(app_state, "flag_evaluations", NOT_COUNTED)
    return found
