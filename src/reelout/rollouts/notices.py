"""What a rollout's notifications say (pure): the JSON `data` a signed webhook carries in the
alerts' envelope, and the Slack message, for a rollout that paused, rolled back, completed or
was aborted. Both name the arms by the plan's variants and by the keys the flag served them as
(`on~r7`): the `variant` the telemetry, the KPIs and the Prometheus series carry.

They go to the plan's `notify` targets through the alerts' receivers and delivery log
(`effects`); this module only words them. A target is a receiver id, optionally prefixed with
its kind and written like a channel: `slack:#video-rollouts` is the Slack receiver
`video-rollouts`, `webhook:deploy-bot` the webhook receiver `deploy-bot`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

EVENTS = {
    "paused": "rollout.paused",
    "rolled_back": "rollout.rolled_back",
    "completed": "rollout.completed",
    "aborted": "rollout.aborted",
}
"""The states a rollout tells its `notify` targets about, and the event each is sent as."""
_TITLE = {
    "paused": "PAUSED",
    "rolled_back": "ROLLED BACK",
    "completed": "COMPLETED",
    "aborted": "ABORTED",
}
_ICON = {
    "paused": ":double_vertical_bar:",
    "rolled_back": ":rewind:",
    "completed": ":white_check_mark:",
    "aborted": ":no_entry_sign:",
}
MAX_SLACK_TEXT = 2900  # a section's text is at most 3000 characters
MAX_SLACK_METRICS = 10
KINDS = ("webhook", "slack")


@dataclass(frozen=True)
class Target:
    """A `notify` entry read: the receiver id it names and the kind it asks for (None: any)."""

    receiver_id: str
    kind: str | None


def target(text: str) -> Target:
    """`slack:#video-rollouts` → the Slack receiver `video-rollouts`; `on-call` → the receiver
    `on-call` whatever its kind."""
    kind, sep, name = text.partition(":")
    if sep and kind in KINDS:
        return Target(name.strip().lstrip("#@"), kind)
    return Target(text.strip().lstrip("#@"), None)


@dataclass(frozen=True)
class Notice:
    """One change of a rollout worth telling: what it is now, the log row that moved it, and
    the decision behind it (None for an operator's command with no decision yet)."""

    rollout_id: int
    flag: str
    environment: str
    treatment: str
    control: str
    served_treatment: str  # the keys the arms were served as (`<variant>~r<id>`, or the plain)
    served_control: str
    excluded: str  # the excluded rest's key: `<control>~excluded`
    state: str
    stage: int  # index into the plan's stages
    stages: int
    percent: int
    at: datetime
    who: str
    reason: str | None
    decision: Mapping[str, Any] | None

    @property
    def event(self) -> str:
        return EVENTS[self.state]


def _iso(when: datetime) -> str:
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def data(notice: Notice) -> dict[str, Any]:
    """The webhook's `data`: the rollout, who moved it and why, and the decision's evidence."""
    n = notice
    return {
        "rollout": {
            "id": n.rollout_id,
            "flag": n.flag,
            "environment": n.environment,
            "treatment": n.treatment,
            "control": n.control,
            "served_as": {
                "treatment": n.served_treatment,
                "control": n.served_control,
                "excluded": n.excluded,
            },
            "state": n.state,
            "stage": n.stage,
            "percent": n.percent,
        },
        "event": n.event,
        "at": _iso(n.at),
        "who": n.who,
        "reason": n.reason,
        "decision": dict(n.decision) if n.decision is not None else None,
        "api": f"/api/v1/rollouts/{n.rollout_id}",
    }


def failing(decision: Mapping[str, Any] | None) -> list[str]:
    """The messages of the guardrails that failed or breached in `decision`."""
    if not decision:
        return []
    per_metric = decision.get("per_metric") or {}
    return [
        str(m.get("message", name))
        for name, m in per_metric.items()
        if isinstance(m, Mapping) and m.get("state") in ("fail", "breach")
    ]


def headline(notice: Notice) -> str:
    n = notice
    where = f"stage {n.stage + 1} of {n.stages}, {n.percent}%"
    return f"[{_TITLE[n.state]}] rollout {n.rollout_id} of {n.flag} in {n.environment} ({where})"


def _arm(plain: str, served: str) -> str:
    return f"`{plain}`" if served == plain else f"`{plain}` (served as `{served}`)"


def arms_line(notice: Notice) -> str:
    """The arms as the KPIs and the telemetry name them: the keys they were served as."""
    n = notice
    return (
        f"*Arms:* {_arm(n.treatment, n.served_treatment)} (treatment) against "
        f"{_arm(n.control, n.served_control)} (control); the rest `{n.excluded}`"
    )


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[:MAX_SLACK_TEXT]}}


def slack(notice: Notice) -> dict[str, Any]:
    """The Slack incoming-webhook message: `text` plus Block Kit `blocks`."""
    n = notice
    title = headline(n)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title[:150]}},
        _section(f"*Why:* {n.reason or 'no reason given'}"),
        _section(arms_line(n)),
    ]
    shown: Sequence[str] = failing(n.decision)
    if shown:
        lines = "\n".join(f"• {m}" for m in shown[:MAX_SLACK_METRICS])
        blocks.append(_section(f"*Evidence:*\n{lines}"))
    if n.state == "rolled_back":
        blocks.append(_section(f"Everyone is served `{n.control}` now."))
    context = f"by {n.who} at {_iso(n.at)} · reelout rollouts show {n.rollout_id}"
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": context}]})
    return {"text": f"{_ICON[n.state]} {title}", "blocks": blocks}
