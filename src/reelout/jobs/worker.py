"""The worker: claims jobs, runs handlers in threads under a heartbeat, retries, and stops cleanly."""

from __future__ import annotations

import functools
import logging
import os
import signal
import socket
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType, TracebackType
from typing import Any, Generic

import anyio.to_thread

from reelout.jobs import service
from reelout.jobs.registry import H, Handler, JobCancelled, JobContext, Registry

log = logging.getLogger("reelout.jobs")

STOP_GRACE_SECONDS = 10.0
_TRACEBACK_CHARS = 6000
_WORKER_ID_MAX = 90  # lease owners are "<worker_id>/<slot>" in a 100-character column


def default_worker_id() -> str:
    """host:pid:random — unique per Worker object, readable in the jobs table."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def describe_error(exc: BaseException) -> str:
    """`Type: message` first (what an operator reads), then the tail of the traceback."""
    trace = "".join(traceback.format_exception(exc))
    return f"{type(exc).__name__}: {exc}\n{trace[-_TRACEBACK_CHARS:]}"


class _Heartbeat:
    """Renews a job's lease every `every` seconds from a thread; a lost lease sets `cancelled`."""

    def __init__(self, ctx: JobContext[Any], every: float) -> None:
        self._ctx = ctx
        self._every = every
        self._done = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"reelout-heartbeat-{ctx.job_id}", daemon=True
        )

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self._done.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._done.wait(self._every):
            try:
                alive = self._ctx.heartbeat()
            except Exception:  # a database hiccup: the next beat may get through
                log.warning("heartbeat of job %s failed", self._ctx.job_id, exc_info=True)
                continue
            if not alive:
                log.warning("job %s: lease lost to another worker", self._ctx.job_id)
                return


class _Reservation:
    """The kind slots one claim holds while it looks for a job."""

    def __init__(self, held: set[str], full: set[str]) -> None:
        self.held, self.full = held, full
        self.kept: str | None = None

    def claimable(self, known: frozenset[str]) -> frozenset[str] | None:
        """Kinds this claim may take; None (any) unless a limited kind is at its limit."""
        return known - self.full if self.full else None

    def keep(self, kind: str) -> None:
        self.kept = kind


class KindSlots:
    """Per-kind concurrency limits inside one worker process (Registry.limit).

    Before claiming, a thread reserves a slot of every limited kind that has one free and claims
    only kinds it holds a slot for (or that have no limit); afterwards it gives back the slots
    of the kinds it did not get. So two threads never both start the last free slot's kind."""

    def __init__(self, limits: dict[str, int]) -> None:
        self._free = dict(limits)
        self._lock = threading.Lock()

    @contextmanager
    def reserve(self) -> Iterator[_Reservation]:
        with self._lock:
            held = {kind for kind, free in self._free.items() if free > 0}
            for kind in held:
                self._free[kind] -= 1
            full = set(self._free) - held
        reservation = _Reservation(held, full)
        try:
            yield reservation
        finally:
            with self._lock:
                for kind in held - {reservation.kept}:
                    self._free[kind] += 1

    def done(self, kind: str) -> None:
        """A job of `kind` that had a slot has ended."""
        with self._lock:
            if kind in self._free:
                self._free[kind] += 1


class Worker(Generic[H]):
    """Runs jobs from the database with `concurrency` threads; any number may share one database.
    Handlers get `runtime`, the host that started the worker (the job layer only needs its
    settings, database and clock)."""

    def __init__(
        self,
        runtime: H,
        registry: Registry[H],
        worker_id: str | None = None,
        concurrency: int | None = None,
        *,
        lease_seconds: float | None = None,
        poll_seconds: float | None = None,
        heartbeat_every: float | None = None,
        stop_grace_seconds: float = STOP_GRACE_SECONDS,
    ) -> None:
        settings = runtime.settings
        self.runtime = runtime
        self.registry = registry
        self.worker_id = worker_id or default_worker_id()
        if len(self.worker_id) > _WORKER_ID_MAX:
            raise ValueError(f"worker_id is longer than {_WORKER_ID_MAX} characters")
        self.concurrency = concurrency or settings.worker_concurrency
        self.lease_seconds = lease_seconds or settings.job_lease_seconds
        self.poll_seconds = poll_seconds or settings.job_poll_seconds
        self.heartbeat_every = heartbeat_every or self.lease_seconds / 3
        self.stop_grace_seconds = stop_grace_seconds
        self._stopping = threading.Event()
        self._active: dict[int, JobContext[H]] = {}
        self._lock = threading.Lock()
        self._schedules_ready = False
        self._kind_slots = KindSlots(registry.limits(settings))

    def lease_owner(self, slot: int) -> str:
        """Each thread leases under its own name, so a stalled thread never speaks for another."""
        return f"{self.worker_id}/{slot}"

    # ---- one step -----------------------------------------------------------------------------

    def ensure_schedules(self) -> None:
        rt = self.runtime
        with rt.db.session() as session:
            for periodic in self.registry.periodics:
                interval = periodic.interval(rt.settings)
                service.ensure_schedule(session, rt.clock, periodic.name, periodic.kind, interval)
        self._schedules_ready = True

    def tick(self) -> int:
        """Enqueue due periodic jobs (exactly one per slot across all workers)."""
        if not self._schedules_ready:
            self.ensure_schedules()
        return service.tick_schedules(self.runtime.db, self.runtime.clock)

    def run_once(self, *, slot: int = 0, tick: bool = True) -> bool:
        """Tick schedules, claim one due job and run it to the end; False if none was run."""
        if tick:
            self.tick()
        rt, owner = self.runtime, self.lease_owner(slot)
        with self._kind_slots.reserve() as reserved:
            job = service.claim(
                rt.db,
                rt.clock,
                owner,
                self.lease_seconds,
                kinds=reserved.claimable(self.registry.kinds),
                on_buried=self._dead,
            )
            if job is None:
                return False
            reserved.keep(job.kind)
        try:
            if self._stopping.is_set():
                service.release(rt.db, rt.clock, job.id, owner)
                return False
            self._execute(job, owner)
            return True
        finally:
            self._kind_slots.done(job.kind)

    def _execute(self, job: service.ClaimedJob, owner: str) -> None:
        ctx = JobContext(
            self.runtime,
            job.id,
            job.kind,
            job.payload,
            job.attempts,
            job.max_attempts,
            owner,
            self.lease_seconds,
        )
        handler = self.registry.get(job.kind)
        if handler is None:
            known = ", ".join(sorted(self.registry.kinds)) or "none"
            self._fail(
                ctx,
                f"UnknownJobKind: no handler registered for job kind {job.kind!r} "
                f"on worker {self.worker_id} (known kinds: {known})",
            )
            return
        with self._tracking(ctx), _Heartbeat(ctx, self.heartbeat_every):
            error = self._call(handler, ctx)
        self._finish(ctx, error)

    @staticmethod
    def _call(handler: Handler[H], ctx: JobContext[H]) -> Exception | None:
        try:
            handler(ctx)
        except Exception as exc:
            return exc
        return None

    def _finish(self, ctx: JobContext[H], error: Exception | None) -> None:
        rt = self.runtime
        if isinstance(error, JobCancelled):
            service.release(rt.db, rt.clock, ctx.job_id, ctx.lease_owner)
            log.info("job %s (%s) given back", ctx.job_id, ctx.kind)
        elif error is not None:
            log.warning(
                "job %s (%s) attempt %s failed: %s", ctx.job_id, ctx.kind, ctx.attempt, error
            )
            self._fail(ctx, describe_error(error))
        elif not service.complete(rt.db, rt.clock, ctx.job_id, ctx.lease_owner):
            log.warning("job %s finished after its lease was lost; result not recorded", ctx.job_id)

    def _dead(self, job: service.DeadJob) -> None:
        """A job failed for the last time: let its kind clean up (e.g. mark its video failed)."""
        hook = self.registry.dead_handler(job.kind)
        if hook is not None:
            self._guarded(lambda: hook(self.runtime, job), f"on-dead hook of job {job.id}")

    def _fail(self, ctx: JobContext[H], error: str) -> None:
        rt = self.runtime
        state = service.fail(rt.db, rt.clock, ctx.job_id, ctx.lease_owner, error)
        if state == service.DEAD:
            self._dead(service.DeadJob(ctx.job_id, ctx.kind, ctx.payload, error, ctx.attempt))
            log.error(
                "job %s (%s) is dead after %s attempts: %s",
                ctx.job_id,
                ctx.kind,
                ctx.attempt,
                error.splitlines()[0],
            )

    @contextmanager
    def _tracking(self, ctx: JobContext[H]) -> Iterator[None]:
        with self._lock:
            self._active[ctx.job_id] = ctx
            if self._stopping.is_set():
                ctx.cancelled.set()
        try:
            yield
        finally:
            with self._lock:
                self._active.pop(ctx.job_id, None)

    # ---- the loop -----------------------------------------------------------------------------

    def start_up(self) -> None:
        """Run the registry's start hooks (each guarded: one failing does not stop the worker)."""
        for hook in self.registry.start_hooks:
            self._guarded(functools.partial(hook, self.runtime), f"start hook {hook.__name__}")

    def run_forever(self, stop: threading.Event) -> None:
        """Poll with `concurrency` threads until `stop` is set, then finish or give back jobs."""
        self.start_up()
        threads = [
            threading.Thread(
                target=self._loop, args=(stop, slot), daemon=True, name=f"reelout-worker-{slot}"
            )
            for slot in range(self.concurrency)
        ]
        for thread in threads:
            thread.start()
        log.info("worker %s started (%s threads)", self.worker_id, self.concurrency)
        # This thread keeps the schedules ticking even while every job thread is busy; its timed
        # wait also lets signal handlers run when it is the main thread.
        while not stop.is_set():
            self._guarded(self.tick, "schedule tick")
            stop.wait(self.poll_seconds)
        self._shutdown(threads)
        log.info("worker %s stopped", self.worker_id)

    def _loop(self, stop: threading.Event, slot: int) -> None:
        while not stop.is_set():
            ran = self._guarded(lambda: self.run_once(slot=slot, tick=False), "poll")
            if not ran:
                stop.wait(self.poll_seconds)

    def _guarded(self, step: Callable[[], object], what: str) -> object:
        """Run one step; a failure (database down, ...) is logged and retried on the next poll."""
        try:
            return step()
        except Exception:
            log.exception("worker %s: %s failed", self.worker_id, what)
            return None

    def _shutdown(self, threads: list[threading.Thread]) -> None:
        self._stopping.set()
        with self._lock:
            for ctx in self._active.values():
                ctx.cancelled.set()
        deadline = time.monotonic() + self.stop_grace_seconds
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            stragglers = list(self._active.values())
        for ctx in stragglers:  # still running after the grace period: hand the job back
            service.release(self.runtime.db, self.runtime.clock, ctx.job_id, ctx.lease_owner)
            log.warning("job %s did not stop in time; given back to the queue", ctx.job_id)


class EmbeddedWorker(Generic[H]):
    """The worker inside `reelout serve`: started and stopped by the FastAPI lifespan."""

    def __init__(self, runtime: H, registry: Registry[H], concurrency: int | None = None) -> None:
        self.worker = Worker(runtime, registry, concurrency=concurrency)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    async def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("the embedded worker is already running")
        await anyio.to_thread.run_sync(self.worker.ensure_schedules)
        self._stop.clear()
        self._thread = threading.Thread(
            target=self.worker.run_forever,
            args=(self._stop,),
            name="reelout-embedded-worker",
            daemon=True,
        )
        self._thread.start()

    async def stop(self) -> None:
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stop.set()
        await anyio.to_thread.run_sync(thread.join, self.worker.stop_grace_seconds + 5)


def run_worker(runtime: H, registry: Registry[H], concurrency: int | None = None) -> None:
    """Run a standalone worker in the foreground until SIGINT or SIGTERM (main thread only)."""
    stop = threading.Event()
    worker = Worker(runtime, registry, concurrency=concurrency)

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("worker %s: %s received, stopping", worker.worker_id, signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        worker.run_forever(stop)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
