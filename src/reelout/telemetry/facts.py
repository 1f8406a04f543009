"""What events say about the units they belong to: an upload attempt, a view, an app session, a
viewer, a viewer's exposure to one arm. A unit's state folds in its events in any order and any
chunking (so the rollups may read events as they arrive); its facts are the numbers the metrics
read. Pure: no I/O.

Hand-written: these are Reelout's own definitions of the industry's QoE measures (Mux Data's
views, Sentry's sessions), over Reelout's own event model.
"""

from __future__ import annotations

import hashlib
import itertools
import math
from collections.abc import Iterable, Mapping
from typing import Any, Literal, NamedTuple

UnitKind = Literal["attempt", "view", "session", "viewer", "action", "exposure"]
UNIT_KINDS: tuple[UnitKind, ...] = ("attempt", "view", "session", "viewer", "action", "exposure")
MAX_ARMS = 64  # flags a unit is attributed to, and exposure units one event folds into
MAX_UPLOADS_PER_VIEWER = 500  # distinct upload attempts a viewer's state remembers
MAX_VIEWS_PER_VIEWER = 500  # distinct views whose startup a viewer's state remembers
MAX_UNIT_ID = 300  # the units table's id width
State = dict[str, Any]
Arm = tuple[str, str]  # a flag and one of its variants

UPLOAD_END = {"upload_completed": "ok", "upload_failed": "failed", "upload_abandoned": "abandoned"}
VIEW_EVENTS = frozenset(
    {
        "player_ready",
        "play_request",
        "playing",
        "pause",
        "seeking",
        "seeked",
        "rebuffer_start",
        "rebuffer_end",
        "rendition_change",
        "error",
        "heartbeat",
        "view_end",
        "cache_hit",
    }
)
BAD_SESSIONS = frozenset({"crashed", "abnormal"})


class Seen(NamedTuple):
    """One stored event as the rollups read it: its decoded JSON and when it counts (ms). A
    named tuple: the rollups make one per event, and a tuple is the cheapest to make."""

    body: Mapping[str, Any]
    at_ms: int

    @property
    def type(self) -> str:
        return str(self.body["type"])


class Unit(NamedTuple):
    """A unit an event tells about: its kind, its id and, for an exposure unit, its arm."""

    kind: UnitKind
    id: str
    arm: Arm | None = None


def units(event: Mapping[str, Any]) -> list[Unit]:
    """The units an event tells about: one of each kind it names, and one exposure unit for each
    variant it carries (at most MAX_ARMS) and for the variant an exposure event served."""
    kind = event["type"]
    found = [Unit("viewer", event["viewer_id"])]
    if kind.startswith("upload_"):
        attempt = event.get("upload_id") or f"event:{event['event_id']}"
        found += [Unit("attempt", attempt), Unit("action", f"upload:{attempt}")]
    elif kind.startswith("processing_"):
        found.append(Unit("attempt", f"processing:{event.get('video_id') or event['event_id']}"))
    elif kind in VIEW_EVENTS and event.get("view_id"):
        view = event["view_id"]
        found += [Unit("view", view), Unit("action", f"view:{view}")]
    elif kind == "app_session" and event.get("session_id"):
        found.append(Unit("session", event["session_id"]))
    return found + _exposures(event)


def _exposures(event: Mapping[str, Any]) -> list[Unit]:
    arms: dict[Arm, None] = {}
    if event["type"] == "exposure":
        arms[(str(event["flag"]), str(event["variant"]))] = None
    for arm in itertools.islice((event.get("flags") or {}).items(), MAX_ARMS):
        arms[arm] = None
    viewer = event["viewer_id"]
    return [Unit("exposure", exposure_unit(*arm, viewer), arm) for arm in arms]


def exposure_unit(flag: str, variant: str, viewer_id: str) -> str:
    """The id of a viewer's exposure to one variant of one flag: a unit of its own, so a viewer
    moved to another variant (a rollout's next stage) counts in that arm from then on. Ids past
    the units' 300 characters are a digest, so they stay distinct."""
    joined = "\x1f".join((flag, variant, viewer_id))
    if len(joined) <= MAX_UNIT_ID:
        return joined
    return "sha256:" + hashlib.sha256(joined.encode()).hexdigest()


def fold(kind: UnitKind, state: State, events: Iterable[Seen], arm: Arm | None = None) -> State:
    """The unit's state after `events` (a new dict; `state` is left as it was). An exposure
    unit folds with its `arm` (`Unit.arm`)."""
    folded = dict(state)
    if "startups" in state:  # a viewer's views, changed in place below: copied once per fold
        folded["startups"] = {view: dict(entry) for view, entry in state["startups"].items()}
    if kind == "exposure":
        _own_arm(folded, arm)
        for seen in events:
            _anchor(folded, seen)
            _exposure(folded, seen)
        return folded
    step, carried = _STEPS[kind], kind != "viewer"  # a viewer counts in no arm: its exposures do
    if carried:
        folded["_arms"] = dict(state.get("_arms", {}))
    for seen in events:
        _anchor(folded, seen)
        if carried:
            _carried(folded, seen)
        step(folded, seen)
    return folded


def _anchor(state: State, seen: Seen) -> None:
    """A unit belongs to the minute of its earliest event, with that event's platform and app
    version (ties: the smaller names)."""
    body = seen.body
    first = (seen.at_ms, body.get("platform") or "", body.get("app_version") or "")
    if "_at" not in state or first < (state["_at"], state["_platform"], state["_app_version"]):
        state["_at"], state["_platform"], state["_app_version"] = first


def _carried(state: State, seen: Seen) -> None:
    """A unit belongs to the variant of each flag it carried earliest (ties: the smaller name)."""
    arms, at = state["_arms"], seen.at_ms
    for flag, variant in (seen.body.get("flags") or {}).items():
        held = arms.get(flag)
        if (held is None and len(arms) < MAX_ARMS) or (held and (at, variant) < tuple(held)):
            arms[flag] = [at, variant]


def _own_arm(state: State, arm: Arm | None) -> None:
    """An exposure unit's arm, kept in its state (`_arm`). A unit stored before exposure units
    folded their viewer's events has none: it was made by an exposure event, so it stays exposed
    (see `attribution`)."""
    if arm is None:
        raise ValueError("an exposure unit folds with its arm (flag, variant)")
    if "_arm" not in state:
        if "_at" in state:
            state["exposed"] = 1
        state["_arm"] = list(arm)


class Attribution(NamedTuple):
    """When a unit counts (ms), its platform and app version, its variant of each flag, and
    whether it counts in everyone's rows too."""

    at: int
    platform: str
    app_version: str
    arms: dict[str, str]
    everyone: bool


def attribution(kind: UnitKind, state: State) -> Attribution:
    """Where a unit counts. A viewer counts in everyone's rows alone and a viewer's exposure in
    its arm's alone (so an arm's viewer metrics see each viewer from their first exposure to it);
    the other units in everyone's and in each variant they carried. An exposure unit stored
    before exposure units had their own arm (`_arm`) counts as it did then: in everyone's rows
    and its arm's, as exposed alone, until its next event."""
    at, platform, version = state["_at"], state["_platform"], state["_app_version"]
    if kind == "exposure" and "_arm" in state:
        flag, variant = state["_arm"]
        return Attribution(at, platform, version, {flag: variant}, False)
    if kind == "viewer":
        return Attribution(at, platform, version, {}, True)
    arms = {flag: held[1] for flag, held in state.get("_arms", {}).items()}
    return Attribution(at, platform, version, arms, True)


def _most(state: State, name: str, value: Any) -> None:
    if value is not None:
        state[name] = max(state.get(name, value), value)


def _least(state: State, name: str, value: Any) -> None:
    if value is not None:
        state[name] = min(state.get(name, value), value)


def _attempt(state: State, seen: Seen) -> None:
    body, outcome = seen.body, UPLOAD_END.get(seen.type)
    if body.get("source") == "server":  # the server's own record: its own metrics
        state["server"] = 1
    if seen.type.startswith("processing_"):
        state[seen.type] = 1
    if outcome:
        state[outcome] = 1
    if seen.type == "upload_completed":
        _most(state, "bytes", body.get("bytes"))
        _least(state, "duration_ms", body.get("duration_ms"))


def _view(state: State, seen: Seen) -> None:
    body, kind = seen.body, seen.type
    _startup_clock(state, seen)
    if kind == "error" and body.get("fatal"):
        state["fatal"] = 1
        if body.get("category", "playback") == "playback":
            state["fatal_playback"] = 1
        if body.get("before_first_frame"):
            state["fatal_before_frame"] = 1
    elif kind == "rebuffer_start":
        state["rebuffer_starts"] = state.get("rebuffer_starts", 0) + 1
    elif kind == "view_end":
        state["ended"] = 1
    elif kind == "cache_hit":
        state["cache_hit_bytes"] = state.get("cache_hit_bytes", 0) + int(body["bytes"])
    for counter in ("rebuffer_ms", "rebuffer_count", "network_bytes"):
        _most(state, counter, body.get(counter))


def _startup_clock(state: State, seen: Seen) -> None:
    """What a view's startup time and whether it played are read from (a view's state, or one
    entry of a viewer's)."""
    if seen.type == "play_request":
        _least(state, "requested_at", seen.at_ms)
    elif seen.type == "playing":
        _least(state, "first_playing_at", seen.at_ms)
    for counter in ("watch_ms", "startup_ms"):
        _most(state, counter, seen.body.get(counter))


def _session(state: State, seen: Seen) -> None:
    state["seen"] = 1
    if seen.body.get("status") in BAD_SESSIONS:
        state["crashed"] = 1


def _action(state: State, seen: Seen) -> None:
    """One thing a user tried (an upload attempt or a view) and whether it failed: short-lived
    units, so a window of minutes sees them when they happen (what rates to alert on need)."""
    body, kind = seen.body, seen.type
    if body.get("source") == "server":
        state["server"] = 1
    if kind in UPLOAD_END:
        _least(state, "outcome", _OUTCOME_RANK[UPLOAD_END[kind]])
    elif kind in ("play_request", "playing"):
        state["view"] = 1
    elif kind == "error" and body.get("fatal"):
        state["fatal"] = 1


def _viewer(state: State, seen: Seen) -> None:
    body, kind = seen.body, seen.type
    if body.get("source") == "server" and kind != "exposure":
        return  # a server fact has no viewer: it counts in the server's metrics alone
    outcome = UPLOAD_END.get(kind)
    if outcome:
        uploads: dict[str, str] = dict(state.get("uploads", {}))
        attempt = body.get("upload_id") or f"event:{body['event_id']}"
        if attempt in uploads or len(uploads) < MAX_UPLOADS_PER_VIEWER:
            best = min(uploads.get(attempt, outcome), outcome, key=_OUTCOME_RANK.__getitem__)
            uploads[attempt] = best
        state["uploads"] = uploads
    elif kind == "play_request":
        state["views"] = state.get("views", 0) + 1
    elif kind == "app_session":
        state["sessions"] = state.get("sessions", 0) + 1
        if body.get("status") in BAD_SESSIONS:
            state["crashed_sessions"] = state.get("crashed_sessions", 0) + 1
    elif kind == "rating":
        state["ratings"] = state.get("ratings", 0) + 1
        state["score_sum"] = state.get("score_sum", 0) + int(body["score"])
    elif kind == "complaint":
        state["complaints"] = state.get("complaints", 0) + 1
    elif kind == "cache_hit":
        state["cache_hit_bytes"] = state.get("cache_hit_bytes", 0) + int(body["bytes"])
    if kind in VIEW_EVENTS and body.get("view_id"):
        _viewer_view(state, seen, str(body["view_id"]))


def _viewer_view(state: State, seen: Seen, view_id: str) -> None:
    """The viewer's own record of each view's startup clock (for the mean of log startup);
    `fold` gave this state its own copy of the records, so they change in place."""
    startups: dict[str, State] = state.setdefault("startups", {})
    if view_id not in startups and len(startups) >= MAX_VIEWS_PER_VIEWER:
        return
    entry = startups.get(view_id, {})
    _startup_clock(entry, seen)
    if entry.get("watch_ms"):
        entry["watch_ms"] = 1  # only whether it played counts here: a beat changes nothing
    if entry:
        startups[view_id] = entry


def _exposure(state: State, seen: Seen) -> None:
    """A viewer in one arm: the viewer's events that carried the arm's variant, and whether an
    exposure event served it (`exposed`)."""
    body = seen.body
    if seen.type == "exposure" and [body["flag"], body["variant"]] == state["_arm"]:
        state["exposed"] = 1
    _viewer(state, seen)


_OUTCOME_RANK = {"ok": 0, "failed": 1, "abandoned": 2}  # a retry that succeeded is a success
_STEPS = {
    "attempt": _attempt,
    "view": _view,
    "session": _session,
    "viewer": _viewer,
    "action": _action,
}


def facts(kind: UnitKind, state: State) -> dict[str, float]:
    """The numbers a unit's metrics read; a fact a unit does not have yet is absent."""
    return _FACTS[kind](state)


def _attempt_facts(state: State) -> dict[str, float]:
    if "processing_ready" in state or "processing_failed" in state:
        return {"processed": 1.0, "processing_ok": float("processing_ready" in state)}
    if state.get("server"):
        return _prefixed("server_", _client_attempt_facts(state))
    return _client_attempt_facts(state)


def _prefixed(prefix: str, facts: dict[str, float]) -> dict[str, float]:
    return {prefix + name: value for name, value in facts.items()}


def _client_attempt_facts(state: State) -> dict[str, float]:
    ended = {outcome for outcome in ("ok", "failed", "abandoned") if state.get(outcome)}
    if not ended:
        return {}
    succeeded = "ok" in ended
    out = {"attempted": 1.0, "succeeded": float(succeeded), "failed": float(not succeeded)}
    if succeeded and state.get("bytes") and state.get("duration_ms") is not None:
        out["seconds_per_100mb"] = state["duration_ms"] / 1000 * 100e6 / state["bytes"]
    return out


def _view_facts(state: State) -> dict[str, float]:
    out = _cache_facts(state)
    if "requested_at" not in state and "first_playing_at" not in state:
        return out
    played = _played(state)
    fatal = bool(state.get("fatal"))
    out |= {
        "views": 1.0,
        "played": float(played),
        "startup_failed": float(fatal and not played),
        "exited_before_start": float(bool(state.get("ended")) and not played and not fatal),
        "playback_failed": float(bool(state.get("fatal_playback"))),
    }
    startup = _startup_ms(state)
    if played and startup is not None:
        out["startup_seconds"] = startup / 1000
    if played:
        watch, stall = float(state.get("watch_ms", 0)), float(state.get("rebuffer_ms", 0))
        stalls = max(state.get("rebuffer_count", 0), state.get("rebuffer_starts", 0))
        out |= {"watch_ms": watch, "rebuffer_ms": stall, "viewing_ms": watch + stall}
        out["rebuffered"] = float(stalls > 0)
    return out


def _cache_facts(state: State) -> dict[str, float]:
    """Bytes from the player's cache and all bytes it delivered, for a view that reported its
    `network_bytes` (without it the share of cache bytes is unknown, not 100 %)."""
    if "network_bytes" not in state:
        return {}
    hit = float(state.get("cache_hit_bytes", 0))
    return {"cache_hit_bytes": hit, "delivered_bytes": hit + float(state["network_bytes"])}


def _played(state: State) -> bool:
    return "first_playing_at" in state or state.get("watch_ms", 0) > 0


def _log_startup_mean(startups: Mapping[str, State]) -> float | None:
    """The mean of ln(startup ms) over the views that played (at least 1 ms each), the views
    as the view unit counts them (with a play_request or playing)."""
    logs = [
        math.log(max(1.0, startup))
        for entry in startups.values()
        if ("requested_at" in entry or "first_playing_at" in entry)
        and _played(entry)
        and (startup := _startup_ms(entry)) is not None
    ]
    return sum(logs) / len(logs) if logs else None


def _startup_ms(state: State) -> float | None:
    """play_request -> first playing on the device's clock, else what the player reported."""
    if "requested_at" in state and "first_playing_at" in state:
        return float(max(0, state["first_playing_at"] - state["requested_at"]))
    reported = state.get("startup_ms")
    return float(reported) if reported is not None else None


def _session_facts(state: State) -> dict[str, float]:
    crashed = float(bool(state.get("crashed")))
    return {"sessions": 1.0, "crashed": crashed, "crash_free": 1.0 - crashed}


def _viewer_facts(state: State) -> dict[str, float]:
    uploads = state.get("uploads", {})
    outcomes = list(uploads.values())
    out = {
        "viewers": 1.0,
        "upload_attempts": float(len(outcomes)),
        "upload_successes": float(outcomes.count("ok")),
        "views": float(state.get("views", 0)),
        "ratings": float(state.get("ratings", 0)),
        "score_sum": float(state.get("score_sum", 0)),
        "complained": float(state.get("complaints", 0) > 0),
        "sessions": float(state.get("sessions", 0)),
        "crashed_sessions": float(state.get("crashed_sessions", 0)),
        "cache_hit_bytes": float(state.get("cache_hit_bytes", 0)),
    }
    if out["sessions"]:
        out["crash_free"] = float(out["crashed_sessions"] == 0)
    log_startup = _log_startup_mean(state.get("startups", {}))
    if log_startup is not None:
        out["log_startup_ms"] = log_startup
    return out


def _action_facts(state: State) -> dict[str, float]:
    if state.get("server"):
        return {}  # the server's record of an upload has its own metrics
    if "outcome" in state:
        return {"actions": 1.0, "failed": float(state["outcome"] != _OUTCOME_RANK["ok"])}
    if state.get("view") or state.get("fatal"):
        return {"actions": 1.0, "failed": float(bool(state.get("fatal")))}
    return {}


def _exposure_facts(state: State) -> dict[str, float]:
    """The viewer's facts in this arm, and `exposed` when an exposure event served it the arm.

    `exposed` counts only units with an exposure event, not every unit whose events carried the
    variant: `exposed_units` is the arms' sample-ratio check, so it must count what the split
    assigned (OFREP's log of what it served, or the app's own exposure events), not what happened
    after the assignment. Whether and how much a viewer's app sends telemetry can depend on the
    variant (a treatment that crashes at start sends less), and a count of units that sent
    events would read that treatment effect as a sample-ratio mismatch and hold the rollout
    instead of letting the guardrails see it."""
    if "_arm" not in state:
        return {"exposed": 1.0}  # stored before exposure units held viewers' facts
    out = _viewer_facts(state)
    if state.get("exposed"):
        out["exposed"] = 1.0
    return out


_FACTS = {
    "attempt": _attempt_facts,
    "view": _view_facts,
    "session": _session_facts,
    "viewer": _viewer_facts,
    "action": _action_facts,
    "exposure": _exposure_facts,
}
