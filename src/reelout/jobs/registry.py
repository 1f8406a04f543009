"""Which code runs for which job kind: handlers, periodic schedules and the context handed to them.

Generic over the host that runs the jobs (at least `Core`: settings, database, clock): the job
layer needs no more, and each domain's handlers ask for the richer context they use (media store,
secret, ...), which the host the workers are started with (Reelout's `Runtime`) provides.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from reelout.config import Settings
from reelout.context import Core
from reelout.jobs import service

H = TypeVar("H", bound=Core)
H_co = TypeVar("H_co", bound=Core, covariant=True)


class JobCancelled(Exception):
    """Raise from a handler that saw `ctx.cancelled`: the job is given back untried, not failed."""


@dataclass(frozen=True)
class JobContext(Generic[H_co]):
    """What a handler gets: the host (`runtime`), the job, and a way to keep (or learn it lost)
    the lease."""

    runtime: H_co
    job_id: int
    kind: str
    payload: dict[str, Any]
    attempt: int
    max_attempts: int
    lease_owner: str
    lease_seconds: float
    cancelled: threading.Event = field(default_factory=threading.Event)

    def heartbeat(self) -> bool:
        """Renew the lease now; on False the job belongs to someone else and `cancelled` is set."""
        rt = self.runtime
        alive = service.heartbeat(
            rt.db, rt.clock, self.job_id, self.lease_owner, self.lease_seconds
        )
        if not alive:
            self.cancelled.set()
        return alive

    def check_cancelled(self) -> None:
        """Raise JobCancelled if the worker is stopping or the lease was lost."""
        if self.cancelled.is_set():
            raise JobCancelled(f"job {self.job_id} cancelled")


Handler = Callable[[JobContext[H]], None]
DeadHandler = Callable[[H, service.DeadJob], None]
StartHook = Callable[[H], None]


@dataclass(frozen=True)
class Periodic:
    """A schedule: enqueue a `kind` job every `interval(settings)` seconds, once per slot."""

    name: str
    kind: str
    interval: Callable[[Settings], int]


class Registry(Generic[H]):
    """Handlers by job kind plus the periodic schedules the workers keep in the database."""

    def __init__(self) -> None:
        self._handlers: dict[str, Handler[H]] = {}
        self._dead_handlers: dict[str, DeadHandler[H]] = {}
        self._limits: dict[str, Callable[[Settings], int]] = {}
        self._periodics: dict[str, Periodic] = {}
        self._start_hooks: list[StartHook[H]] = []

    def on_start(self, hook: StartHook[H]) -> StartHook[H]:
        """Decorator: run `hook(runtime)` once when a worker starts, before it claims any job
        (e.g. to end what a crashed worker on this host left running)."""
        self._start_hooks.append(hook)
        return hook

    @property
    def start_hooks(self) -> tuple[StartHook[H], ...]:
        return tuple(self._start_hooks)

    def add(self, kind: str, handler: Handler[H]) -> None:
        if kind in self._handlers:
            raise ValueError(f"a handler for job kind {kind!r} is already registered")
        self._handlers[kind] = handler

    def handler(self, kind: str) -> Callable[[Handler[H]], Handler[H]]:
        """Decorator: `@registry.handler("media.transcode")` on a `def f(ctx: JobContext)`."""

        def register(fn: Handler[H]) -> Handler[H]:
            self.add(kind, fn)
            return fn

        return register

    def on_dead(self, kind: str) -> Callable[[DeadHandler[H]], DeadHandler[H]]:
        """Decorator: run `f(runtime, dead_job)` once a `kind` job has failed for the last time
        (its handler raised on the last attempt, or its worker died during it)."""

        def register(fn: DeadHandler[H]) -> DeadHandler[H]:
            self._dead_handlers[kind] = fn
            return fn

        return register

    def dead_handler(self, kind: str) -> DeadHandler[H] | None:
        return self._dead_handlers.get(kind)

    def limit(self, kind: str, most: Callable[[Settings], int]) -> None:
        """Run at most `most(settings)` jobs of `kind` at once in one worker process (e.g. one
        encode per two cores); the worker's other threads keep taking other kinds meanwhile."""
        self._limits[kind] = most

    def limits(self, settings: Settings) -> dict[str, int]:
        return {kind: max(1, most(settings)) for kind, most in self._limits.items()}

    def periodic(self, name: str, kind: str, interval: Callable[[Settings], int]) -> None:
        """Run `kind` every `interval(settings)` seconds; exactly one worker fires each slot."""
        if name in self._periodics:
            raise ValueError(f"a schedule named {name!r} is already registered")
        self._periodics[name] = Periodic(name, kind, interval)

    def get(self, kind: str) -> Handler[H] | None:
        return self._handlers.get(kind)

    @property
    def kinds(self) -> frozenset[str]:
        return frozenset(self._handlers)

    @property
    def periodics(self) -> tuple[Periodic, ...]:
        return tuple(self._periodics.values())
