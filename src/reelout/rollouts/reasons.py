"""Short, stable classes of why a rollout moved (pure), for labels: `/metrics`'
`reelout_rollout_decisions_total{decision,reason}` and the rollback alert's `reason` label.

The decision log keeps every reason in full words (`decide`); a label needs a small fixed set,
so this is the one place that maps a decision's first reason to its class, by the words each
reason starts with. An operator's command is `command`; the controller's pause after a manual
edit of the flag is `manual_edit`; a reason no rule knows is `other`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

COMMAND = "command"
MANUAL_EDIT = "manual_edit"
OTHER = "other"

# (class, how its reasons begin), tried in order; the texts are `decide`'s
_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("telemetry_lag", re.compile(r"telemetry lag\b")),
    ("alert_veto", re.compile(r"alert veto\b")),
    ("no_traffic", re.compile(r"no traffic\b")),
    ("srm", re.compile(r"SRM\b")),
    ("guardrail", re.compile(r'guardrail "')),
    ("approval", re.compile(r"awaiting approval\b")),
    ("max_duration", re.compile(r"past max_duration\b")),
    ("collecting", re.compile(r"collecting\b")),
    ("stage_done", re.compile(r"stage \d+% done\b")),
    (MANUAL_EDIT, re.compile(r"the flag \S+ was edited by\b")),
)
CLASSES = (*(name for name, _ in _RULES), COMMAND, OTHER)
"""Every class a label can take."""


def classify(reasons: Sequence[str]) -> str:
    """The class of a decision's reasons: its first reason decides (`decide` puts the one that
    made the decision first: the failing guardrail, the approval awaited, the health check)."""
    if not reasons:
        return OTHER
    first = reasons[0]
    for name, pattern in _RULES:
        if pattern.match(first):
            return name
    return OTHER
