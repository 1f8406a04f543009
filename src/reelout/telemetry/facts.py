"""What events say about the units they belong to: an upload attempt, a view, an app session, a
viewer, an exposure. A unit's state folds in its events in any order and any chunking (so the rollups may
read events as they arrive); its facts are the numbers the metrics read. Pure: no I/O.

Hand-written: these are Reelout's own definitions of the industry's QoE measures (Mux Data's
views, Sentry's sessions), over Reelout's own event model.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping
from typing import Any, Literal, NamedTuple

UnitKind = Literal["attempt", "view", "session", "viewer", "action", "exposure"]
UNIT_KINDS: tuple[UnitKind, ...] = ("attempt", "view", "session", "viewer", "action", "exposure")
MAX_ARMS = 64  # flags a unit is attributed to
MAX_UPLOADS_PER_VIEWER = 500  # distinct upload attempts a viewer's state remembers
MAX_VIEWS_PER_VIEWER = 500  # distinct views whose startup a viewer's state remembers
MAX_UNIT_ID = 300  # the units table's id width
State = dict[str, Any]

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


def unit_ids(event: Mapping[str, Any]) -> dict[UnitKind, str]:
    """The units an event tells about, by kind, and their ids."""
    kind = event["type"]
    ids: dict[UnitKind, str] = {"viewer": event["viewer_id"]}
    if kind.startswith("upload_"):
        ids["attempt"] = event.get("upload_id") or f"event:{event['event_id']}"
    if kind.startswith("processing_"):
        ids["attempt"] = f"processing:{event.get('video_id') or event['event_id']}"
    if kind in VIEW_EVENTS and event.get("view_id"):
        ids["view"] = event["view_id"]
    if "attempt" in ids and not kind.startswith("processing_"):
        ids["action"] = f"upload:{ids['attempt']}"  # an action: one upload attempt or one view
    elif "view" in ids:
        ids["action"] = f"view:{ids['view']}"
    if kind == "app_session" and event.get("session_id"):
        ids["session"] = event["session_id"]
    if kind == "exposure":
        ids["exposure"] = exposure_unit(event["flag"], event["variant"], event["viewer_id"])
    return ids


def exposure_unit(flag: str, variant: str, viewer_id: str) -> str:
    """The id of a viewer's exposure to one variant of one flag: a unit of its own, so a viewer
    moved to another variant (a rollout's next stage) counts in that arm from then on. Ids past
    the units' 300 characters are a digest, so they stay distinct."""
    joined = "\x1f".join((flag, variant, viewer_id))
    if len(joined) <= MAX_UNIT_ID:
        return joined
    return "sha256:" + hashlib.sha256(joined.encode()).hexdigest()


def fold(kind: UnitKind, state: State, events: Iterable[Seen]) -> State:
    """The unit's state after `events` (a new dict; `state` is left as it was)."""
    folded = dict(state)
    folded["_arms"] = dict(state.get("_arms", {}))
    if "startups" in state:  # a viewer's views, changed in place below: copied once per fold
        folded["startups"] = {view: dict(entry) for view, entry in state["startups"].items()}
    step = _STEPS[kind]
    for seen in events:
        _attribute(folded, seen)
        step(folded, seen)
    return folded


def _attribute(state: State, seen: Seen) -> None:
    """A unit belongs to the minute of its earliest event, with that event's platform and app
    version, and to the variant of each flag it carried earliest (ties: the smaller name)."""
    body, at = seen.body, seen.at_ms
    first = (at, body.get("platform") or "", body.get("app_version") or "")
    if "_at" not in state or first < (state["_at"], state["_platform"], state["_app_version"]):
        state["_at"], state["_platform"], state["_app_version"] = first
    arms = state["_arms"]
    for flag, variant in (body.get("flags") or {}).items():
        held = arms.get(flag)
        if (held is None and len(arms) < MAX_ARMS) or (held and (at, variant) < tuple(held)):
            arms[flag] = [at, variant]


def attribution(state: State) -> tuple[int, str, str, dict[str, str]]:
    """When a unit counts (ms), its platform, app version, and its variant of each flag."""
    arms = {flag: held[1] for flag, held in state.get("_arms", {}).items()}
    return state["_at"], state["_platform"], state["_app_version"], arms


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
    """A viewer served a variant of a flag: the unit belongs to that arm alone (whatever other
    flags the event carries), from its earliest exposure."""
    body = seen.body
    state["_arms"] = {str(body["flag"]): [state["_at"], str(body["variant"])]}


_OUTCOME_RANK = {"ok": 0, "failed": 1, "abandoned": 2}  # a retry that succeeded is a success
_STEPS = {
    "attempt": _attempt,
    "view": _view,
    "session": _session,
    "viewer": _viewer,
    "action": _action,
    "exposure": _exposure,
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
    return {"exposed": 1.0}


_FACTS = {
    "attempt": _attempt_facts,
    "view": _view_facts,
    "session": _session_facts,
    "viewer": _viewer_facts,
    "action": _action_facts,
    "exposure": _exposure_facts,
}
