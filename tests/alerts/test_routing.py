"""Notifications from alert states on an injected clock: on firing, on resolve, every repeat
interval; grouping and its waits; inhibition; silences and their end."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reelout.alerts import routing
from reelout.alerts.routing import (
    AlertView,
    Group,
    Matcher,
    MatchOp,
    Notification,
    Route,
    SilenceWindow,
)
from reelout.alerts.rules import Routing

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)
IMMEDIATE = {"group_wait": "0s", "group_interval": "0s", "repeat_interval": "1h"}


def alert(fp: str, status: str = "firing", **labels: str) -> AlertView:
    base = {"alertname": "upload-failure", "severity": "warning", "flag": "f", **labels}
    return AlertView(fp, base, {"summary": fp}, status, T0)


@dataclass
class Router:
    """Routing run evaluation after evaluation, remembering its groups, as the service does."""

    cfg: Routing
    routes: Sequence[Route] = (Route("r1"),)
    silences: list[SilenceWindow] = field(default_factory=list)
    groups: Mapping[tuple[str, str], Group] = field(default_factory=dict)
    sent: list[tuple[datetime, Notification]] = field(default_factory=list)

    def tick(self, now: datetime, *alerts: AlertView) -> list[Notification]:
        outcome = routing.route(alerts, self.routes, self.cfg, self.silences, self.groups, now)
        self.groups = outcome.groups
        self.sent += [(now, note) for note in outcome.notifications]
        return outcome.notifications


def cfg(**changes: Any) -> Routing:
    return Routing.model_validate({**IMMEDIATE, **changes})


def test_notifies_on_firing_and_on_resolve() -> None:
    router = Router(cfg())
    [first] = router.tick(T0, alert("a"))
    assert first.status == "firing" and first.reason == "first"
    assert router.tick(T0 + MIN, alert("a")) == []
    [resolved] = router.tick(T0 + 2 * MIN, alert("a", "resolved"))
    assert resolved.status == "resolved" and [a.fingerprint for a in resolved.resolved] == ["a"]
    assert router.tick(T0 + 3 * MIN) == [] and router.groups == {}


def test_a_resolved_alert_is_reported_even_after_its_instance_is_gone() -> None:
    router = Router(cfg(group_interval="5m"))
    router.tick(T0, alert("a"))
    assert router.tick(T0 + MIN) == []  # resolved and forgotten before the group may speak
    [note] = router.tick(T0 + 5 * MIN)
    assert note.status == "resolved" and note.resolved[0].ends_at == T0 + 5 * MIN


def test_repeat_interval_renotifies_while_firing() -> None:
    router = Router(cfg(repeat_interval="4h"))
    for minute in range(0, 9 * 60, 5):
        router.tick(T0 + minute * MIN, alert("a"))
    assert [(at - T0, n.reason) for at, n in router.sent] == [
        (timedelta(0), "first"),
        (timedelta(hours=4), "repeat"),
        (timedelta(hours=8), "repeat"),
    ]


@given(
    repeat=st.integers(min_value=1, max_value=300),
    step=st.integers(min_value=1, max_value=30),
    minutes=st.integers(min_value=1, max_value=1000),
)
def test_repeats_never_come_sooner_than_the_interval_and_never_miss_one(
    repeat: int, step: int, minutes: int
) -> None:
    router = Router(cfg(repeat_interval=f"{repeat}m"))
    for minute in range(0, minutes, step):
        router.tick(T0 + minute * MIN, alert("a"))
    times = [at for at, _ in router.sent]
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert all(timedelta(minutes=repeat) <= gap < timedelta(minutes=repeat + step) for gap in gaps)
    last_tick = T0 + (minutes - 1) // step * step * MIN
    assert last_tick - times[-1] < timedelta(minutes=repeat + step)


def test_group_wait_gathers_the_first_alerts_into_one_notification() -> None:
    router = Router(cfg(group_wait="30s", group_interval="5m"))
    assert router.tick(T0, alert("a", variant="on")) == []
    [note] = router.tick(T0 + MIN, alert("a", variant="on"), alert("b", variant="off"))
    assert {a.fingerprint for a in note.firing} == {"a", "b"}
    assert dict(note.group_labels) == {"alertname": "upload-failure", "flag": "f"}


def test_a_change_waits_for_group_interval() -> None:
    router = Router(cfg(group_interval="5m"))
    router.tick(T0, alert("a"))
    assert router.tick(T0 + MIN, alert("a"), alert("b")) == []
    [note] = router.tick(T0 + 5 * MIN, alert("a"), alert("b"))
    assert note.reason == "changed" and {a.fingerprint for a in note.firing} == {"a", "b"}


def test_groups_follow_group_by() -> None:
    router = Router(cfg())
    notes = router.tick(T0, alert("a", flag="x"), alert("b", flag="y"))
    assert sorted(n.group_labels["flag"] for n in notes) == ["x", "y"]
    per_alert = Router(cfg(group_by=["..."]))
    assert len(per_alert.tick(T0, alert("a", variant="on"), alert("b", variant="off"))) == 2


def test_receivers_take_the_alerts_their_matchers_name() -> None:
    routes = (Route("pager", (Matcher("severity", "page"),)), Route("all"))
    router = Router(cfg(), routes=routes)
    notes = router.tick(T0, alert("a", severity="page"), alert("b"))
    got = {n.receiver_id: sorted(a.fingerprint for a in n.firing) for n in notes}
    assert got == {"pager": ["a"], "all": ["a", "b"]}


def test_send_resolved_false_keeps_quiet_on_resolve() -> None:
    router = Router(cfg(), routes=(Route("r1", send_resolved=False),))
    router.tick(T0, alert("a"))
    assert router.tick(T0 + MIN, alert("a", "resolved")) == []
    assert router.groups == {}


# ---- inhibition --------------------------------------------------------------------------------

ROLLED_BACK = {"alertname": "rollout-rolled-back", "severity": "page"}


@pytest.mark.parametrize(
    ("source_labels", "target_labels", "inhibited"),
    [
        ({**ROLLED_BACK, "flag": "f"}, {"severity": "warning", "flag": "f"}, True),
        ({**ROLLED_BACK, "flag": "g"}, {"severity": "warning", "flag": "f"}, False),  # not equal
        ({**ROLLED_BACK, "flag": "f"}, {"severity": "page", "flag": "f"}, False),  # not a target
        ({"alertname": "other", "flag": "f"}, {"severity": "warning", "flag": "f"}, False),
    ],
)
def test_inhibition_mutes_targets_sharing_the_equal_labels(
    source_labels: dict[str, str], target_labels: dict[str, str], inhibited: bool
) -> None:
    source = AlertView("src", source_labels, {}, "firing", T0)
    target = AlertView("tgt", {"alertname": "upload-failure", **target_labels}, {}, "firing", T0)
    muted = routing.muting([source, target], [], cfg().inhibit, T0)
    assert ("tgt" in muted) is inhibited
    assert "src" not in muted
    if inhibited:
        assert muted["tgt"].inhibited_by == ("src",)


def test_a_resolved_source_no_longer_inhibits() -> None:
    source = AlertView("src", {**ROLLED_BACK, "flag": "f"}, {}, "resolved", T0)
    target = alert("tgt")
    assert routing.muting([source, target], [], cfg().inhibit, T0) == {}


def test_an_inhibited_alert_is_not_notified_until_the_source_resolves() -> None:
    router = Router(cfg())
    source = AlertView("src", {**ROLLED_BACK, "flag": "f"}, {}, "firing", T0)
    notes = router.tick(T0, source, alert("tgt"))
    assert [[a.fingerprint for a in n.firing] for n in notes] == [["src"]]
    resolved_source = AlertView("src", {**ROLLED_BACK, "flag": "f"}, {}, "resolved", T0)
    notes = router.tick(T0 + MIN, resolved_source, alert("tgt"))
    fired = sorted(a.fingerprint for n in notes for a in n.firing)
    assert fired == ["tgt"]


# ---- silences ----------------------------------------------------------------------------------


def silence(ends_in: timedelta, *matchers: Matcher) -> SilenceWindow:
    return SilenceWindow("s1", matchers, T0, T0 + ends_in)


def test_a_silence_mutes_until_its_end_then_the_alert_notifies() -> None:
    router = Router(cfg())
    router.silences = [silence(10 * MIN, Matcher("flag", "f"))]
    for minute in range(10):
        assert router.tick(T0 + minute * MIN, alert("a")) == []
    [note] = router.tick(T0 + 10 * MIN, alert("a"))
    assert note.reason == "first"


def test_silence_matchers_equal_and_not_equal() -> None:
    now = T0 + MIN
    muted = silence(timedelta(hours=1), Matcher("flag", "f"), Matcher("variant", "off", MatchOp.ne))
    assert muted.mutes({"flag": "f", "variant": "on"}, now)
    assert not muted.mutes({"flag": "f", "variant": "off"}, now)
    assert not muted.mutes({"flag": "g", "variant": "on"}, now)
    assert muted.mutes({"flag": "f"}, now), "a missing label is not 'off'"
    assert not muted.mutes({"flag": "f", "variant": "on"}, T0 + timedelta(hours=1)), "ended"
    assert not muted.mutes({"flag": "f", "variant": "on"}, T0 - MIN), "not started"


def test_an_alert_silenced_while_firing_is_not_reported_resolved() -> None:
    router = Router(cfg())
    router.tick(T0, alert("a"))
    router.silences = [silence(timedelta(hours=1), Matcher("flag", "f"))]
    assert router.tick(T0 + MIN, alert("a")) == []
    assert router.tick(T0 + 2 * MIN, alert("a", "resolved")) == []


@given(
    end=st.integers(min_value=1, max_value=120),
    firing=st.lists(st.booleans(), min_size=1, max_size=150),
)
def test_nothing_is_sent_for_a_silenced_alert_before_the_silence_ends(
    end: int, firing: list[bool]
) -> None:
    router = Router(cfg())
    router.silences = [silence(timedelta(minutes=end), Matcher("alertname", "upload-failure"))]
    for minute, on in enumerate(firing):
        router.tick(T0 + minute * MIN, *([alert("a")] if on else []))
    assert all(at >= T0 + timedelta(minutes=end) for at, _ in router.sent)
    after = [on for minute, on in enumerate(firing) if minute >= end]
    if after and after[0]:
        assert router.sent and router.sent[0][0] == T0 + timedelta(minutes=end)
