"""Synthetic users over real HTTP: each is served the flag (over OFREP with a client key, or by
the in-process SDK: simulate.apps), its view plays the test clip's first segment from the server
(simulate.playback), and the variant decides how its upload, its view and its app session go;
what it did is reported through the real telemetry ingest, stamped with the server's
(accelerated) time."""

from __future__ import annotations

import math
import os
import random
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx

from reelout.simulate.apps import FlagSource
from reelout.simulate.playback import Fetched, Player, tus_send
from reelout.simulate.scenarios import Behaviour, Scenario

BATCH_EVENTS = 500  # events per ingest request
UPLOAD_BYTES = 32 * 1024  # a real upload's size: small, the rehearsal is about the decisions
PLAYER_ERROR = "media_error"  # the code a failing view's player reports
FETCH_ERROR = "network_error"  # the code of a view whose real playback requests failed
UPLOAD_EVERY = 40  # one user in this many uploads real bytes over tus; the rest report only


@dataclass
class ServerClock:
    """The server's clock as `/healthz` tells it (time and speed), run forward locally."""

    at: datetime
    speed: float
    synced: float  # time.monotonic() when `at` was read

    @classmethod
    def read(cls, api: httpx.Client) -> ServerClock:
        before = time.monotonic()
        reply = api.get("/healthz")
        reply.raise_for_status()
        body = reply.json()
        at = datetime.fromisoformat(body["time"])
        return cls(at, float(body.get("clock_speed", 1.0)), (before + time.monotonic()) / 2)

    def now(self) -> datetime:
        return self.at + timedelta(seconds=(time.monotonic() - self.synced) * self.speed)


def _event(kind: str, viewer: str, at: datetime, **fields: Any) -> dict[str, Any]:
    return {"type": kind, "event_id": str(uuid.uuid4()), "viewer_id": viewer,
            "client_time": at.isoformat(), "platform": "simulated", **fields}  # fmt: skip


def _lognormal(rng: random.Random, median: float, sigma: float = 0.5) -> float:
    return median * math.exp(rng.gauss(0.0, sigma))


def user_events(
    rng: random.Random,
    viewer: str,
    flag: str,
    variant: str,
    how: Behaviour,
    at: datetime,
    upload: Upload | None = None,
    fetched: Fetched | None = None,
) -> list[dict[str, Any]]:
    """One user's session as its app reports it: an upload attempt (`upload` when it sent real
    bytes, whose fate it already knows), one view (`fetched`: its real playback requests), and
    the session's end."""
    flags = {"flags": {flag: variant}}
    failed = rng.random() < how.upload_failure if upload is None else not upload.completed
    attempt: dict[str, Any] = {"upload_id": uuid.uuid4().hex, "method": "tus", **flags}
    if upload is not None:
        attempt["video_id"] = upload.video_id
    if failed:
        done = _event("upload_failed", viewer, at, error_class="network", retryable=True,
                      **attempt)  # fmt: skip
    else:
        ms = int(_lognormal(rng, how.upload_seconds) * 1000)
        size = UPLOAD_BYTES if upload is not None else 50_000_000
        done = _event("upload_completed", viewer, at, bytes=size, duration_ms=ms, **attempt)
    events = [done, *view_events(rng, viewer, how, at, flags, fetched)]
    status = "crashed" if rng.random() < how.crash else "exited"
    session = _event("app_session", viewer, at, status=status, session_id=uuid.uuid4().hex, **flags)
    return [*events, session]


def view_events(
    rng: random.Random,
    viewer: str,
    how: Behaviour,
    at: datetime,
    flags: dict[str, Any],
    fetched: Fetched | None,
) -> list[dict[str, Any]]:
    """One view: a failed playback request fails it before the first frame; otherwise its
    startup is the requests' real time plus the variant's synthetic part, its network bytes
    the real ones."""
    view = {"view_id": uuid.uuid4().hex, "player": "other", **flags}
    real: dict[str, Any] = {} if fetched is None else {"network_bytes": fetched.bytes}
    start = [_event("play_request", viewer, at, **view)]
    failure = None if fetched is None else fetched.failure
    if failure is not None or rng.random() < how.view_failure:
        why = (
            {"code": PLAYER_ERROR}
            if failure is None
            else {"code": FETCH_ERROR, "message": failure[:1000]}
        )
        return [
            *start,
            _event("error", viewer, at, fatal=True, before_first_frame=True, **why, **view),
            _event("view_end", viewer, at, reason="error", **real, **view),
        ]  # fmt: skip
    startup = int(_lognormal(rng, how.startup_ms, 0.4))
    if fetched is not None:
        startup += round(fetched.seconds * 1000)
    watch = rng.randint(20_000, 120_000)
    stall = int(watch * how.rebuffer_share * rng.uniform(0.0, 2.0))
    return [
        *start,
        _event("playing", viewer, at + timedelta(milliseconds=startup), **view),
        _event("view_end", viewer, at, reason="completed", startup_ms=startup, watch_ms=watch,
               rebuffer_ms=stall, rebuffer_count=1 if stall else 0, **real, **view),
    ]  # fmt: skip


@dataclass(frozen=True)
class Upload:
    video_id: str
    completed: bool


def tus_upload(admin: httpx.Client, fails: bool) -> Upload:
    """A real tus upload of random bytes: all of them in the creation request, or, for a
    failing one, half of them (the connection "drops" and the app gives up)."""
    sent = UPLOAD_BYTES // 2 if fails else UPLOAD_BYTES
    uid, offset = tus_send(admin, os.urandom(sent), UPLOAD_BYTES, "reelout simulate")
    return Upload(uid, offset == UPLOAD_BYTES)


@dataclass
class PlaybackTally:
    """The views' real playback requests: views, bytes, failures and real startup times."""

    views: int = 0
    bytes: int = 0
    failed: int = 0
    seconds: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, fetched: Fetched) -> None:
        with self.lock:
            self.views += 1
            self.bytes += fetched.bytes
            self.failed += fetched.failure is not None
            self.seconds.append(fetched.seconds)

    def median_ms(self) -> float:
        ordered = sorted(self.seconds)
        return 1000 * ordered[len(ordered) // 2] if ordered else 0.0


@dataclass
class Traffic:
    """Users arriving at a server: served the flag by `flags`, reporting through the ingest."""

    api: httpx.Client  # with the client key: the ingest
    admin: httpx.Client  # makes the creator upload links
    flags: FlagSource
    clock: ServerClock
    scenario: Scenario
    flag: str
    treatment: str
    rng: random.Random
    started_at: datetime | None = None
    users: int = 0
    served: dict[str, int] = field(default_factory=dict)
    reported: dict[str, int] = field(default_factory=dict)  # exposures the apps reported
    events_sent: int = 0
    uploads: list[Upload] = field(default_factory=list)  # the real ones, over tus
    player: Player | None = None  # plays the test clip for each view; None: views report only
    playback: PlaybackTally = field(default_factory=lambda: PlaybackTally())

    def reporting(self) -> bool:
        """Whether the apps' telemetry still reaches the server (the scenario's outage has not
        begun)."""
        stops = self.scenario.telemetry_stops_after
        if stops is None or self.started_at is None:
            return True
        return self.clock.now() - self.started_at < stops

    def arrive(self, count: int, pool: ThreadPoolExecutor) -> None:
        """`count` new users: each is served a variant (over `pool`'s connections at once),
        acts, and reports it (while the apps' telemetry reaches the server)."""
        viewers = [f"sim-{uuid.uuid4().hex[:12]}" for _ in range(count)]
        events: list[dict[str, Any]] = []
        seen: list[tuple[str, str]] = []
        for viewer, (variant, fetched) in zip(viewers, pool.map(self._serve, viewers), strict=True):
            self.users += 1
            self.served[variant] = self.served.get(variant, 0) + 1
            at = self.clock.now()
            how = self.scenario.treatment if variant == self.treatment else self.scenario.control
            upload = None
            if self.users % UPLOAD_EVERY == 0:
                upload = tus_upload(self.admin, self.rng.random() < how.upload_failure)
                self.uploads.append(upload)
            events += user_events(self.rng, viewer, self.flag, variant, how, at, upload, fetched)
            if how.exposure_reported >= 1 or self.rng.random() < how.exposure_reported:
                seen.append((viewer, variant))
        if self.scenario.flags == "in_process":
            self.flags.report(seen)
            for _, variant in seen:
                self.reported[variant] = self.reported.get(variant, 0) + 1
        if self.reporting():
            self.send(events)

    def _serve(self, viewer: str) -> tuple[str, Fetched | None]:
        """The viewer's variant, and its view's real playback requests (on a pool thread)."""
        variant = self.flags.variant(viewer)
        if self.player is None:
            return variant, None
        fetched = self.player.view()
        self.playback.add(fetched)
        return variant, fetched

    def send(self, events: list[dict[str, Any]]) -> None:
        for start in range(0, len(events), BATCH_EVENTS):
            batch = events[start : start + BATCH_EVENTS]
            reply = self.api.post("/api/v1/telemetry/events", json=batch)
            reply.raise_for_status()
            self.events_sent += len(batch)
