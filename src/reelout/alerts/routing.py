"""From alert states to notifications (pure): silences, inhibition, grouping and the waits.

Alertmanager's model, per receiver: alerts that match a receiver are grouped by `group_by`; a new
group speaks after `group_wait`, a group that changed (an alert fired or resolved) after
`group_interval` since it last spoke, and an unchanged group with firing alerts again every
`repeat_interval`. A silenced or inhibited alert is muted: it keeps its state but is left out of
notifications (a muted alert that was notified is not reported resolved while it is muted).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from reelout.alerts.rules import GROUP_ALL, InhibitRule, Routing


class MatchOp(StrEnum):
    eq = "="
    ne = "!="


@dataclass(frozen=True)
class Matcher:
    """`name = value` or `name != value`; a missing label reads as ""."""

    name: str
    value: str
    op: MatchOp = MatchOp.eq

    def matches(self, labels: Mapping[str, str]) -> bool:
        equal = labels.get(self.name, "") == self.value
        return equal if self.op is MatchOp.eq else not equal


def all_match(matchers: Iterable[Matcher], labels: Mapping[str, str]) -> bool:
    return all(m.matches(labels) for m in matchers)


def equals(wanted: Mapping[str, str]) -> tuple[Matcher, ...]:
    return tuple(Matcher(k, v) for k, v in sorted(wanted.items()))


@dataclass(frozen=True)
class SilenceWindow:
    """A silence as routing sees it: what it matches and when it holds."""

    id: str
    matchers: tuple[Matcher, ...]
    starts_at: datetime
    ends_at: datetime

    def mutes(self, labels: Mapping[str, str], now: datetime) -> bool:
        return self.starts_at <= now < self.ends_at and all_match(self.matchers, labels)


@dataclass(frozen=True)
class AlertView:
    """An alert as notifications show it; `status` is firing, nodata, pending or resolved (only
    firing and nodata alerts are active: pending ones are not told yet)."""

    fingerprint: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    status: str
    starts_at: datetime | None
    ends_at: datetime | None = None
    value: float | None = None

    @property
    def active(self) -> bool:
        return self.status in ("firing", "nodata")

    def to_json(self) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint,
            "status": self.status,
            "labels": dict(self.labels),
            "annotations": dict(self.annotations),
            "starts_at": _iso(self.starts_at),
            "ends_at": _iso(self.ends_at),
            "value": self.value,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AlertView:
        return cls(
            fingerprint=str(data["fingerprint"]),
            labels=dict(data["labels"]),
            annotations=dict(data["annotations"]),
            status=str(data["status"]),
            starts_at=_time(data.get("starts_at")),
            ends_at=_time(data.get("ends_at")),
            value=data.get("value"),
        )


def _iso(when: datetime | None) -> str | None:
    return None if when is None else when.isoformat().replace("+00:00", "Z")


def _time(text: object) -> datetime | None:
    return datetime.fromisoformat(str(text).replace("Z", "+00:00")) if text else None


@dataclass(frozen=True)
class Route:
    """A receiver as routing sees it: the alerts it takes and whether it hears of resolves."""

    receiver_id: str
    matchers: tuple[Matcher, ...] = ()
    send_resolved: bool = True


@dataclass(frozen=True)
class Group:
    """What a receiver's group remembers between evaluations."""

    receiver_id: str
    key: str
    labels: Mapping[str, str]
    created_at: datetime
    last_notified_at: datetime | None = None
    notified: Mapping[str, AlertView] = field(default_factory=dict)  # as last sent firing


@dataclass(frozen=True)
class Notification:
    receiver_id: str
    group_key: str
    group_labels: Mapping[str, str]
    firing: tuple[AlertView, ...]
    resolved: tuple[AlertView, ...]
    reason: str  # first, changed, repeat

    @property
    def status(self) -> str:
        return "firing" if self.firing else "resolved"


@dataclass(frozen=True)
class Muting:
    """Why an alert is muted now: the silences that match it, or the alerts inhibiting it."""

    silenced_by: tuple[str, ...] = ()
    inhibited_by: tuple[str, ...] = ()

    @property
    def muted(self) -> bool:
        return bool(self.silenced_by or self.inhibited_by)


@dataclass(frozen=True)
class Outcome:
    groups: dict[tuple[str, str], Group]
    notifications: list[Notification]
    muting: dict[str, Muting]


# ---- muting ------------------------------------------------------------------------------------


def inhibitors(
    target: AlertView, sources: Sequence[AlertView], rules: Sequence[InhibitRule]
) -> tuple[str, ...]:
    """The active alerts that inhibit `target` under `rules` (an alert never inhibits itself)."""
    found: list[str] = []
    for rule in rules:
        if not all_match(equals(rule.target), target.labels):
            continue
        for source in sources:
            if (
                source.fingerprint != target.fingerprint
                and source.active
                and all_match(equals(rule.source), source.labels)
                and all(source.labels.get(n, "") == target.labels.get(n, "") for n in rule.equal)
            ):
                found.append(source.fingerprint)
    return tuple(dict.fromkeys(found))


def muting(
    alerts: Sequence[AlertView],
    silences: Sequence[SilenceWindow],
    inhibit: Sequence[InhibitRule],
    now: datetime,
) -> dict[str, Muting]:
    """Every alert's muting now (alerts neither silenced nor inhibited are left out)."""
    out: dict[str, Muting] = {}
    for alert in alerts:
        silenced = tuple(s.id for s in silences if s.mutes(alert.labels, now))
        inhibited = inhibitors(alert, alerts, inhibit) if alert.active else ()
        if silenced or inhibited:
            out[alert.fingerprint] = Muting(silenced, inhibited)
    return out


# ---- grouping ----------------------------------------------------------------------------------


def group_labels(labels: Mapping[str, str], group_by: Sequence[str]) -> dict[str, str]:
    if GROUP_ALL in group_by:
        return dict(labels)
    return {name: labels[name] for name in group_by if name in labels}


def group_key(receiver_id: str, labels: Mapping[str, str]) -> str:
    text = json.dumps([receiver_id, sorted(labels.items())], separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _flush_reason(
    group: Group, firing: set[str], resolved: bool, cfg: Routing, now: datetime
) -> str | None:
    """Whether (and why) a group speaks now; the waits of Alertmanager."""
    if group.last_notified_at is None:
        return "first" if firing and now >= group.created_at + cfg.group_wait else None
    changed = bool(firing - set(group.notified)) or resolved
    if changed:
        return "changed" if now >= group.last_notified_at + cfg.group_interval else None
    if firing and now >= group.last_notified_at + cfg.repeat_interval:
        return "repeat"
    return None


def _step_group(
    group: Group,
    members: Sequence[AlertView],
    muted: Mapping[str, Muting],
    route: Route,
    cfg: Routing,
    now: datetime,
) -> tuple[Group | None, Notification | None]:
    active = {a.fingerprint: a for a in members if a.active}
    firing = {fp: a for fp, a in active.items() if fp not in muted}
    resolved = [
        replace(old, status="resolved", ends_at=_ended(members, fp, now))
        for fp, old in group.notified.items()
        if fp not in active and fp not in muted
    ]
    reason = _flush_reason(group, set(firing), bool(resolved), cfg, now)
    if reason is None:
        alive = bool(active) or bool(group.notified)
        return (group if alive else None), None
    still_muted = {fp: v for fp, v in group.notified.items() if fp in active and fp in muted}
    after = replace(group, last_notified_at=now, notified={**still_muted, **firing})
    sent = tuple(firing.values()), tuple(resolved) if route.send_resolved else ()
    note = None
    if sent[0] or sent[1]:
        note = Notification(route.receiver_id, group.key, group.labels, *sent, reason=reason)
    return (after if after.notified or active else None), note


def _ended(members: Sequence[AlertView], fp: str, now: datetime) -> datetime:
    for alert in members:
        if alert.fingerprint == fp and alert.ends_at is not None:
            return alert.ends_at
    return now


def route(
    alerts: Sequence[AlertView],
    routes: Sequence[Route],
    cfg: Routing,
    silences: Sequence[SilenceWindow],
    groups: Mapping[tuple[str, str], Group],
    now: datetime,
) -> Outcome:
    """The groups after this evaluation and the notifications to send now."""
    muted = muting(alerts, silences, cfg.inhibit, now)
    new_groups: dict[tuple[str, str], Group] = {}
    notes: list[Notification] = []
    for rt in routes:
        members: dict[str, list[AlertView]] = {}
        labels_of: dict[str, dict[str, str]] = {}
        for alert in alerts:
            if all_match(rt.matchers, alert.labels):
                labels = group_labels(alert.labels, cfg.group_by)
                key = group_key(rt.receiver_id, labels)
                members.setdefault(key, []).append(alert)
                labels_of[key] = labels
        keys = set(members) | {k for (rid, k) in groups if rid == rt.receiver_id}
        for key in sorted(keys):
            group = groups.get((rt.receiver_id, key))
            found = members.get(key, [])
            if group is None:
                if not any(a.active and a.fingerprint not in muted for a in found):
                    continue
                group = Group(rt.receiver_id, key, labels_of[key], created_at=now)
            kept, note = _step_group(group, found, muted, rt, cfg, now)
            if kept is not None:
                new_groups[(rt.receiver_id, key)] = kept
            if note is not None:
                notes.append(note)
    return Outcome(new_groups, notes, muted)
