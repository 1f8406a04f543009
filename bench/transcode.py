"""Transcode: a 1080p30 clip through the whole processing job next to the bare ffmpeg command
with the same settings, and one pass next to one ffmpeg process per rung, in one run."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import TOKEN, WORK_DIR, GiB, MiB, Usage, work_dir
from reelout import startup
from reelout.config import Settings
from reelout.jobs import service as jobs_service
from reelout.jobs.worker import Worker
from reelout.media import encode, ffmpeg, pipeline
from reelout.media import service as media
from reelout.media.jobs import tools as media_tools
from reelout.media.ladder import Limits, Plan, plan_ladder
from reelout.media.models import Video
from reelout.media.probe import SourceInfo, probe
from reelout.media.storage import FileMediaStore
from reelout.runtime import Runtime
from reelout.tasks import build_registry

SAMPLE_EVERY = 0.05
READY_FACTOR_GOAL = 2.0  # ready within 2x the clip's duration (hls-checks.md, check 20)
OVERHEAD_GOAL = 0.05  # job / bare - 1
WORKER_RSS_GOAL = GiB
BUSY_OTHERS = 0.25  # cores that other processes used during a phase: above this, say so
# the job's steps, in the order they run
CLAIM = "claim the job (DB)"
CHECK = "check the original: fdatasync + SHA-256"
PROBE = "probe (ffprobe)"
ENCODE = "encode: one ffmpeg, all rungs (niced)"
PROGRESS = "  of which progress writes (DB), in the job's thread"
MASTER = "measure the rungs, write the master"
FALLBACK = "MP4 fallback + poster"
CONCAT = "MP4 fallback: concatenate the top rung's fragments"
REMUX = "MP4 fallback: remux +faststart (ffmpeg)"
POSTER = "poster (ffmpeg)"
DISCARD = "discard scratch"
PUBLISH = "publish: fsync every file and folder, rename"
READY = "mark ready (DB)"
OTHER = "other (not in a step above)"
AFTER = "after ready: complete the job (DB), stop the heartbeat"
STEP_ORDER = (
    *(CLAIM, CHECK, PROBE, ENCODE, PROGRESS, MASTER, CONCAT, REMUX, POSTER),
    *(PUBLISH, DISCARD, READY, OTHER, AFTER),
)

# -- the source clip -----------------------------------------------------------------------------
# A handheld pan over a textured, moving scene with sensor grain, stored like a phone stores it:
# - testsrc2 (moving shapes, a counter, colour bars) blended over a fixed texture of blurred
#   noise, so every block has detail (a flat test card is mostly skip blocks for x264);
# - a 2400x1350 canvas cropped to 1920x1080 along a slow Lissajous path: the whole picture moves
#   every frame (global motion, as a hand-held phone gives), so motion search has real work;
# - temporal grain (strength 5) on top: no two frames are the same, as with a real sensor;
# - H.264 High, CABAC, `veryfast` CRF 18 capped at 20 Mbit/s (what phones write for 1080p30:
#   17-20 Mbit/s), so decoding it costs what decoding a phone clip costs;
# - stereo AAC 192k at 48 kHz: two different tones with a slow tremolo, plus noise.
SOURCE_VIDEO = (
    "testsrc2=size=2400x1350:rate=30:duration={d}[a];"
    "color=c=gray:size=2400x1350:rate=30:duration={d},noise=alls=90:allf=u,gblur=sigma=1.6[t];"
    "[t][a]blend=all_mode=overlay,"
    "crop=1920:1080:x='240+200*sin(t*0.7)':y='135+120*sin(t*0.53+1)',"
    "noise=alls=5:allf=t+u,format=yuv420p"
)
SOURCE_AUDIO = (
    "aevalsrc='0.25*sin(2*PI*220*t)*(1+0.5*sin(2*PI*0.5*t))+0.08*(random(0)*2-1)"
    "|0.25*sin(2*PI*330*t)+0.08*(random(1)*2-1)':s=48000:d={d}"
)
SOURCE_CODEC = [
    *("-c:v", "libx264", "-preset", "veryfast", "-profile:v", "high", "-crf", "18"),
    *("-maxrate", "20M", "-bufsize", "40M", "-g", "60", "-pix_fmt", "yuv420p"),
    *("-c:a", "aac", "-b:a", "192k", "-ar", "48000", "-ac", "2", "-movflags", "+faststart"),
]


def source_command(ffmpeg_bin: str, duration: int, out: Path) -> list[str]:
    return [
        ffmpeg_bin,
        *("-hide_banner", "-nostdin", "-y", "-v", "error"),
        *("-f", "lavfi", "-i", SOURCE_VIDEO.format(d=duration)),
        *("-f", "lavfi", "-i", SOURCE_AUDIO.format(d=duration)),
        *("-map", "0:v", "-map", "1:a", *SOURCE_CODEC, "-t", str(duration)),
        str(out),
    ]


def make_source(ffmpeg_bin: str, duration: int, say: Callable[[str], None]) -> Path:
    """The clip, made once and kept under bench/.work (keyed by the recipe and duration)."""
    recipe = json.dumps(source_command("ffmpeg", duration, Path("out.mp4")))
    key = hashlib.sha256(recipe.encode()).hexdigest()[:10]
    path = WORK_DIR / f"transcode-source-{duration}s-{key}.mp4"
    if path.is_file():
        return path
    WORK_DIR.mkdir(exist_ok=True)
    say(f"making the {duration} s source clip once (cached as {path.name}) ...")
    temp = path.with_suffix(".tmp.mp4")
    subprocess.run(source_command(ffmpeg_bin, duration, temp), check=True)
    os.replace(temp, path)
    return path


# -- measuring -----------------------------------------------------------------------------------


def _busy_seconds() -> float:
    """CPU-seconds the whole machine has spent busy (all processes, all cores)."""
    t = psutil.cpu_times()
    return float(t.user + t.nice + t.system + getattr(t, "irq", 0.0) + getattr(t, "softirq", 0.0))


def _cpu_seconds() -> float:
    """This process and every child it has waited for (each ffmpeg once it has ended)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


class TreeSampler:
    """Peak RSS of this process plus all its children (summed), sampled every 50 ms; CPU at
    start and stop. Also the peak of the children alone (the ffmpeg processes)."""

    def __init__(self) -> None:
        self.proc = psutil.Process()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.baseline = self.peak = self.children_peak = 0
        self._cpu0 = self._busy0 = 0.0
        self.usage = Usage(0.0, 0, 0)
        self.others = 0.0  # CPU-seconds that other processes used meanwhile

    def _sample(self) -> None:
        own = children = 0
        with contextlib.suppress(psutil.Error):
            own = self.proc.memory_info().rss
        with contextlib.suppress(psutil.Error):
            for child in self.proc.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    children += child.memory_info().rss
        self.peak = max(self.peak, own + children)
        self.children_peak = max(self.children_peak, children)

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_EVERY):
            self._sample()

    def __enter__(self) -> TreeSampler:
        self._cpu0, self._busy0 = _cpu_seconds(), _busy_seconds()
        self._sample()
        self.baseline = self.peak
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()
        self.usage = Usage(_cpu_seconds() - self._cpu0, self.baseline, self.peak)
        self.others = max(0.0, _busy_seconds() - self._busy0 - self.usage.cpu_seconds)


@dataclass
class Result:
    """One phase of one round."""

    phase: str
    seconds: float
    usage: Usage
    children_peak: int
    output_bytes: int
    load: float  # 1-minute load average when the phase started
    others_cpu: float = 0.0  # CPU-seconds other processes on the machine used during the phase
    round_no: int = 0
    processes: int = 1
    steps: dict[str, float] = field(default_factory=dict)  # the job's steps, in seconds
    counts: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    @property
    def others_cores(self) -> float:
        return self.others_cpu / self.seconds if self.seconds else 0.0

    def realtime(self, duration: float) -> float:
        return duration / self.seconds if self.seconds else 0.0

    def summary(self, duration: float) -> dict[str, Any]:
        return {
            "phase": self.phase,
            "round": self.round_no,
            "seconds": round(self.seconds, 2),
            "realtime_factor": round(self.realtime(duration), 3),
            "cpu_seconds": round(self.usage.cpu_seconds, 1),
            "rss_baseline": self.usage.rss_baseline,
            "rss_peak": self.usage.rss_peak,
            "ffmpeg_rss_peak": self.children_peak,
            "output_bytes": self.output_bytes,
            "processes": self.processes,
            "load_at_start": round(self.load, 2),
            "others_cpu_seconds": round(self.others_cpu, 1),
            "others_cores": round(self.others_cores, 2),
            "steps": {k: round(v, 3) for k, v in self.steps.items()},
            "counts": self.counts,
            "errors": self.errors,
        }


def _load() -> float:
    return os.getloadavg()[0]


def _settle() -> None:
    """Flush dirty pages left by the previous phase so they do not slow the next one."""
    os.sync()
    time.sleep(1.0)


def _tree_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def measure(phase: str, work: Callable[[], tuple[int, list[str]]], processes: int = 1) -> Result:
    """Run `work` (returns bytes written and errors) under the sampler."""
    _settle()
    load = _load()
    with TreeSampler() as sampler:
        start = time.perf_counter()
        written, errors = work()
        seconds = time.perf_counter() - start
    return Result(
        phase,
        seconds,
        sampler.usage,
        sampler.children_peak,
        written,
        load,
        others_cpu=sampler.others,
        processes=processes,
        errors=errors,
    )


# -- the job as the product runs it ----------------------------------------------------------------


class StepClock:
    """Wraps the pipeline's steps with timers for one job run (thin: a perf_counter each side).

    What the product runs is unchanged; only its functions are looked up through a timer."""

    def __init__(self) -> None:
        self.steps: dict[str, float] = {}
        self.counts: dict[str, int] = {}
        self.ready_at: float | None = None
        self.encoded: tuple[Plan, SourceInfo, Path, list[str]] | None = None
        self._undo: list[tuple[object, str, object]] = []

    def add(self, name: str, seconds: float) -> None:
        self.steps[name] = self.steps.get(name, 0.0) + seconds
        self.counts[name] = self.counts.get(name, 0) + 1

    def _patch(self, owner: object, attr: str, wrap: Callable[[Any], Any]) -> None:
        original = getattr(owner, attr)
        self._undo.append((owner, attr, original))
        setattr(owner, attr, wrap(original))

    def _timed(self, owner: object, attr: str, name: str) -> None:
        def wrap(original: Callable[..., Any]) -> Callable[..., Any]:
            def timed(*args: Any, **kwargs: Any) -> Any:
                start = time.perf_counter()
                try:
                    return original(*args, **kwargs)
                finally:
                    self.add(name, time.perf_counter() - start)

            return timed

        self._patch(owner, attr, wrap)

    def __enter__(self) -> StepClock:
        self._timed(jobs_service, "claim", CLAIM)
        self._timed(media, "original_fault", CHECK)
        self._timed(pipeline, "probe", PROBE)
        self._timed(pipeline.Job, "_write_master", MASTER)
        self._timed(pipeline.Job, "_fallback_and_poster", FALLBACK)
        self._timed(FileMediaStore, "publish", PUBLISH)
        self._timed(FileMediaStore, "discard", DISCARD)
        self._patch(pipeline.Job, "_progress", self._progress_wrap)
        self._patch(pipeline.Job, "_ready", self._ready_wrap)
        self._patch(ffmpeg, "run", self._run_wrap)
        self._patch(encode, "hls_command", self._hls_wrap)
        return self

    def __exit__(self, *exc: object) -> None:
        for owner, attr, original in reversed(self._undo):
            setattr(owner, attr, original)

    def _progress_wrap(self, original: Callable[..., None]) -> Callable[..., None]:
        def progress(job: pipeline.Job, pct: float, force: bool = False) -> None:
            before = job._last_progress
            start = time.perf_counter()
            original(job, pct, force)
            if job._last_progress != before:  # it wrote
                self.add(PROGRESS, time.perf_counter() - start)

        return progress

    def _ready_wrap(self, original: Callable[..., bool]) -> Callable[..., bool]:
        def ready(job: pipeline.Job, done: pipeline.Published) -> bool:
            start = time.perf_counter()
            try:
                return original(job, done)
            finally:
                self.ready_at = time.perf_counter()
                self.add(READY, self.ready_at - start)

        return ready

    def _run_wrap(self, original: Callable[..., None]) -> Callable[..., None]:
        def run(args: list[str], limits: ffmpeg.RunLimits, on_progress: Any = None) -> None:
            if "hls" in args:
                name = ENCODE
            elif "+faststart" in args:
                name = REMUX
            else:
                name = POSTER
            start = time.perf_counter()
            try:
                original(args, limits, on_progress)
            finally:
                self.add(name, time.perf_counter() - start)

        return run

    def _hls_wrap(self, original: Callable[..., list[str]]) -> Callable[..., list[str]]:
        def hls_command(
            ffmpeg_bin: str, plan: Plan, src: SourceInfo, source: Path, out: Path, **options: Any
        ) -> list[str]:
            args = original(ffmpeg_bin, plan, src, source, out, **options)
            self.encoded = (plan, src, out, args)
            return args

        return hls_command


@dataclass
class Bench:
    """Everything one run shares: the runtime on a scratch data folder, the clip, the plan."""

    rt: Runtime
    tools: ffmpeg.Tools
    source: Path
    duration: float
    scratch: Path
    plan: Plan | None = None
    src: SourceInfo | None = None
    original_sync: list[float] = field(default_factory=list)


def make_runtime(folder: Path, nice: int | None) -> Runtime:
    settings = Settings(data_dir=folder / "data", admin_token=TOKEN, embedded_worker=False)
    if nice is not None:
        settings.media_ffmpeg_nice = nice
    rt = Runtime.from_settings(settings)
    startup.prepare(rt)  # migrate
    return rt


def put_original(bench: Bench) -> str:
    """A new video whose original is the clip, received the way a direct upload receives it:
    create the video, stream the bytes into the original while hashing, then record it (which
    queues the processing job). The fdatasync that the job will do is timed here once on the
    freshly written file (what a job right after an upload pays), then the page cache is
    settled before the job runs."""
    rt = bench.rt
    with rt.db.session() as session:
        uid = media.create_video(session, rt.clock, source="direct").uid
    digest, size = hashlib.sha256(), 0
    with bench.source.open("rb") as src, rt.media_store.write_original(uid) as dst:
        while block := src.read(MiB):
            dst.write(block)
            digest.update(block)
            size += len(block)
    start = time.perf_counter()
    rt.media_store.sync_original(uid)
    bench.original_sync.append(time.perf_counter() - start)
    with rt.db.session() as session:
        media.original_received(session, rt.clock, uid, size=size, sha256=digest.hexdigest())
    return uid


def run_job(bench: Bench, uid: str) -> Result:
    """The queued job through the real worker: claim → ... → state ready (timed to `ready`)."""
    rt = bench.rt
    worker = Worker(rt, build_registry(), worker_id="bench", concurrency=1)
    clock = StepClock()
    _settle()
    load = _load()
    with clock, TreeSampler() as sampler:
        start = time.perf_counter()
        ran = worker.run_once(tick=False)
        end = time.perf_counter()
    with rt.db.read() as session:
        video = session.get(Video, uid)
        state = video.state if video else "gone"
        detail = f"{video.error_code} {video.error_text}" if video and video.error_code else ""
        version = video.version if video else None
    errors = [] if ran and state == "ready" else [f"job ran={ran}, state={state} {detail}"]
    ready_at = clock.ready_at or end
    seconds = ready_at - start
    steps = dict(clock.steps)
    encode_args = clock.encoded
    if encode_args is not None:
        bench.plan, bench.src = encode_args[0], encode_args[1]
        s = rt.settings
        limits = Limits(s.media_max_duration_seconds, s.media_max_pixels)
        if plan_ladder(probe(bench.source, bench.tools.ffprobe), limits) != bench.plan:
            errors.append("the job's plan differs from plan_ladder() on the clip")
    fallback = steps.pop(FALLBACK, 0.0)
    steps[CONCAT] = max(0.0, fallback - steps.get(REMUX, 0.0) - steps.get(POSTER, 0.0))
    accounted = sum(v for k, v in steps.items() if k != PROGRESS)  # progress is inside encode
    steps[OTHER] = max(0.0, seconds - accounted)
    steps[AFTER] = end - ready_at
    steps = {name: steps[name] for name in STEP_ORDER if name in steps}
    written = 0
    if version is not None and isinstance(rt.media_store, FileMediaStore):
        folder = rt.media_store.root / uid / version
        written = _tree_bytes(folder)
        shutil.rmtree(folder, ignore_errors=True)  # free its page cache for the next phase
    return Result(
        "job",
        seconds,
        sampler.usage,
        sampler.children_peak,
        written,
        load,
        others_cpu=sampler.others,
        steps=steps,
        counts=dict(clock.counts),
        errors=errors,
    )


# -- ffmpeg alone ------------------------------------------------------------------------------------


def _ffmpeg(args: list[str]) -> list[str]:
    """Run one ffmpeg command as it is: not niced, progress (if asked for) to /dev/null."""
    proc = subprocess.run(
        args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    if proc.returncode != 0:
        return [f"ffmpeg exit {proc.returncode}: {proc.stderr.decode(errors='replace')[-500:]}"]
    return []


def _checked(bench: Bench) -> tuple[Plan, SourceInfo]:
    if bench.plan is None or bench.src is None:
        raise RuntimeError("the job has not run yet: no plan to compare with")
    return bench.plan, bench.src


def bare_command(bench: Bench, out: Path) -> list[str]:
    """The job's own encode command (same plan, same arguments), writing to `out`."""
    plan, src = _checked(bench)
    return encode.hls_command(bench.tools.ffmpeg, plan, src, bench.source, out)


def run_bare(bench: Bench) -> Result:
    out = bench.scratch / "bare"

    def work() -> tuple[int, list[str]]:
        errors = _ffmpeg(bare_command(bench, out))
        return _tree_bytes(out), errors

    try:
        return measure("bare ffmpeg", work)
    finally:
        shutil.rmtree(out, ignore_errors=True)


def rung_commands(bench: Bench, out: Path) -> list[list[str]]:
    """One command per rung, biggest first: the same graph, codecs and HLS muxing as the
    one-pass command, restricted to that rung (so each decodes the source again)."""
    plan, src = _checked(bench)
    return [
        encode.hls_command(
            bench.tools.ffmpeg, dataclasses.replace(plan, rungs=(rung,)), src, bench.source, out
        )
        for rung in reversed(plan.rungs)
    ]


def run_per_rung(bench: Bench, parallel: int) -> Result:
    out = bench.scratch / "per-rung"
    commands = rung_commands(bench, out)

    def work() -> tuple[int, list[str]]:
        with ThreadPoolExecutor(parallel) as pool:
            errors = [e for errs in pool.map(_ffmpeg, commands) for e in errs]
        return _tree_bytes(out), errors

    name = "per-rung seq" if parallel == 1 else f"per-rung {parallel} at once"
    try:
        return measure(name, work, processes=len(commands))
    finally:
        shutil.rmtree(out, ignore_errors=True)


def run_decode(bench: Bench) -> Result:
    """The floor under any ladder: decode the clip (and its audio) and throw it away."""
    args = [bench.tools.ffmpeg, "-hide_banner", "-nostdin", "-v", "error", "-i", str(bench.source)]
    return measure("decode only", lambda: (0, _ffmpeg([*args, "-f", "null", "-"])))


# -- the run ------------------------------------------------------------------------------------------


@dataclass
class Options:
    duration: int
    repeat: int
    parallel: bool
    max_wait: float
    job_nice: int | None = None  # None: the product's default (REELOUT_MEDIA_FFMPEG_NICE)


PHASES = ("job", "bare", "per-rung", "per-rung-2")


def run_round(
    bench: Bench, opts: Options, round_no: int, say: Callable[[str], None]
) -> list[Result]:
    """Round 1 runs job, bare, per-rung (, per-rung x2); round 2 the reverse; and so on. The job
    always runs in round 1 first: the others take its plan."""
    uid = put_original(bench)
    phases = [p for p in PHASES if opts.parallel or p != "per-rung-2"]
    order = phases if round_no % 2 == 0 else phases[::-1]
    results = []
    for phase in order:
        say(f"round {round_no + 1}: {phase} (load {_load():.2f}) ...")
        if phase == "job":
            result = run_job(bench, uid)
        elif phase == "bare":
            result = run_bare(bench)
        else:
            result = run_per_rung(bench, 1 if phase == "per-rung" else 2)
        result.round_no = round_no
        results.append(result)
        say(f"  {result.phase}: {result.seconds:.1f} s" + (" ERRORS" if result.errors else ""))
    return results


def wait_idle(max_wait: float, say: Callable[[str], None]) -> float:
    """Wait (up to max_wait seconds) until the machine is idle: under 0.25 cores busy over 5 s
    (the load average is a poor guide here: every x264 thread of a previous run counts in it
    for minutes). Returns the 1-minute load average when it starts."""
    deadline = time.monotonic() + max_wait
    while True:
        busy = psutil.cpu_percent(interval=5.0) / 100 * (os.cpu_count() or 1)
        if busy < BUSY_OTHERS or time.monotonic() >= deadline:
            return _load()
        say(f"other processes keep {busy:.2f} cores busy: waiting for the machine to calm down")
        time.sleep(25)


def run(opts: Options, say: Callable[[str], None]) -> tuple[Bench, list[Result], dict[str, Any]]:
    tools = media_tools(None, None)  # found once, as the worker does at start-up
    source = make_source(tools.ffmpeg, opts.duration, say)
    info = probe(source, tools.ffprobe)
    meta: dict[str, Any] = {
        "source": source.name,
        "source_bytes": source.stat().st_size,
        "source_mbit_s": round(source.stat().st_size * 8 / info.duration / 1e6, 1),
        "ffmpeg": tools.version,
        "cpus": os.cpu_count(),
        "load_at_start": round(wait_idle(opts.max_wait, say), 2),
        "job_ffmpeg_nice": None,
        "started_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
    }
    results: list[Result] = []
    with work_dir("transcode-") as tmp:
        rt = make_runtime(tmp, opts.job_nice)
        bench = Bench(rt, tools, source, info.duration, tmp)
        meta["job_ffmpeg_nice"] = rt.settings.media_ffmpeg_nice
        try:
            for round_no in range(opts.repeat):
                results += run_round(bench, opts, round_no, say)
            say("reference: decode only ...")
            results.append(run_decode(bench))
        finally:
            rt.db.dispose()
    meta["finished_utc"] = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
    meta["load_at_end"] = round(_load(), 2)
    meta["original_fdatasync_seconds"] = [round(s, 3) for s in bench.original_sync]
    if bench.plan is not None:
        meta["rungs"] = [f"{r.width}x{r.height}" for r in bench.plan.rungs]
    return bench, results, meta


# -- reporting ----------------------------------------------------------------------------------------


def _runs(results: list[Result], prefix: str) -> list[Result]:
    return [r for r in results if r.phase.startswith(prefix)]


def _median(runs: list[Result]) -> Result:
    """The run with the median wall time (the slower one of the middle two)."""
    ordered = sorted(runs, key=lambda r: r.seconds)
    return ordered[len(ordered) // 2]


def _round_ratios(results: list[Result], a: str, b: str, cpu: bool = False) -> list[float]:
    """a ÷ b wall time (or CPU-seconds) within each round (they ran minutes apart, in turn)."""

    def value(r: Result) -> float:
        return r.usage.cpu_seconds if cpu else r.seconds

    other = {r.round_no: value(r) for r in _runs(results, b)}
    return [value(r) / other[r.round_no] for r in _runs(results, a) if other.get(r.round_no)]


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "-"


def _median_ratio(results: list[Result], a: str, b: str) -> float | None:
    ratios = _round_ratios(results, a, b)
    return statistics.median(ratios) if ratios else None


def goals(results: list[Result], duration: float) -> list[tuple[str, str, bool]]:
    jobs = _runs(results, "job")
    clean = not any(r.errors for r in results)
    worst = max(r.seconds for r in jobs)
    out = [
        (
            f"job ready within {READY_FACTOR_GOAL:g}x the clip ({READY_FACTOR_GOAL * duration:.0f} s)",
            f"{worst:.1f} s (worst run) = {worst / duration:.2f}x",
            worst <= READY_FACTOR_GOAL * duration and clean,
        )
    ]
    overhead = _median_ratio(results, "job", "bare")
    cpu = statistics.median(_round_ratios(results, "job", "bare", cpu=True) or [0.0])
    out.append(
        (
            f"pipeline overhead (job / bare - 1) <= {OVERHEAD_GOAL:.0%}",
            "-"
            if overhead is None
            else f"{overhead - 1:+.1%} wall (CPU-s {cpu - 1:+.1%}), median of rounds",
            overhead is not None and overhead - 1 <= OVERHEAD_GOAL,
        )
    )
    onepass = _median_ratio(results, "bare", "per-rung seq")
    out.append(
        (
            "one pass faster than one process per rung (sequential)",
            "-" if onepass is None else f"one pass takes {onepass:.2f}x the time",
            onepass is not None and onepass < 1.0,
        )
    )
    rss = max(r.usage.rss_peak for r in jobs)
    out.append(
        (
            "worker RSS < 1 GiB (worker + its ffmpeg)",
            f"{rss / MiB:.0f} MiB (worst run)",
            rss < WORKER_RSS_GOAL,
        )
    )
    return out


def _fmt_s(x: float) -> str:
    return f"{x:.1f} s"


def print_tables(
    console: Console, results: list[Result], meta: dict[str, Any], opts: Options
) -> None:
    duration = opts.duration
    head = (
        f"Clip: {duration} s 1920x1080 30 fps + stereo AAC, {meta['source_mbit_s']} Mbit/s H.264 "
        f"({meta['source_bytes'] / MiB:.0f} MiB); rungs {', '.join(meta.get('rungs', []))}; "
        f"ffmpeg {meta['ffmpeg']}; the job's ffmpeg at nice {meta['job_ffmpeg_nice']}; "
        f"{meta['cpus']} CPUs; load average at start "
        f"{meta['load_at_start']}, at end {meta['load_at_end']}; {meta['started_utc']} - "
        f"{meta['finished_utc']} UTC"
    )
    console.print(head)
    names = list(dict.fromkeys(r.phase for r in results))
    table = Table(
        title="Wall time, speed and memory (the median run of each)", title_justify="left"
    )
    for col in (
        "",
        "wall",
        "realtime x",
        "wall vs bare",
        "CPU-s",
        "CPU vs bare",
        "peak RSS (tree)",
        "ffmpeg RSS",
        "others (cores)",
        "output",
    ):
        table.add_column(col, justify="right" if col else "left")
    bare = _median(_runs(results, "bare"))
    for name in names:
        runs = [r for r in results if r.phase == name]
        r = _median(runs)
        table.add_row(
            name,
            _fmt_s(r.seconds),
            f"{r.realtime(duration):.2f}",
            _ratio(r.seconds, bare.seconds),
            f"{r.usage.cpu_seconds:.0f}",
            _ratio(r.usage.cpu_seconds, bare.usage.cpu_seconds),
            f"{r.usage.rss_peak / MiB:.0f} MiB",
            f"{r.children_peak / MiB:.0f} MiB",
            f"{r.others_cores:.2f}",
            f"{r.output_bytes / MiB:.1f} MiB" if r.output_bytes else "-",
        )
    console.print(table)
    for r in results:
        if r.others_cores > BUSY_OTHERS:
            console.print(
                f"[yellow]busy machine: other processes used {r.others_cores:.2f} cores on "
                f"average during {r.phase} (round {r.round_no + 1}); its wall time is not "
                "comparable[/yellow]"
            )
    if opts.repeat > 1:
        each = Table(title="Each round: wall seconds (cores other processes used meanwhile)")
        each.title_justify = "left"
        each.add_column("phase")
        for i in range(opts.repeat):
            each.add_column(f"round {i + 1}", justify="right")
        for name in names:
            cells = []
            for i in range(opts.repeat):
                run = next((r for r in results if r.phase == name and r.round_no == i), None)
                cells.append(f"{run.seconds:.1f} ({run.others_cores:.2f})" if run else "")
            each.add_row(name, *cells)
        for label, a, b in (
            ("job / bare", "job", "bare"),
            ("bare / per-rung seq", "bare", "per-rung seq"),
        ):
            each.add_row(label, *[f"{x:.3f}x" for x in _round_ratios(results, a, b)])
            cpu = _round_ratios(results, a, b, cpu=True)
            each.add_row(f"{label}, CPU-s", *[f"{x:.3f}x" for x in cpu])
        console.print(each)
    jobs = _runs(results, "job")
    steps = Table(title="Inside the job: seconds per step, each run", title_justify="left")
    steps.add_column("step")
    for r in jobs:
        steps.add_column(f"round {r.round_no + 1}", justify="right")
    steps.add_column("share (median run)", justify="right")
    steps.add_column("calls", justify="right")
    job = _median(jobs)
    for name in STEP_ORDER:
        if name not in job.steps:
            continue
        share = f"{job.steps[name] / job.seconds:.1%}" if name != AFTER else "(not in wall)"
        cells = [f"{r.steps.get(name, 0.0):.3f}" for r in jobs]
        steps.add_row(name, *cells, share, str(job.counts.get(name, "")))
    steps.add_row("job, claim to ready", *[f"{r.seconds:.3f}" for r in jobs], "", "")
    bares = {r.round_no: r.seconds for r in _runs(results, "bare")}
    cells = [f"{bares[r.round_no]:.3f}" if r.round_no in bares else "" for r in jobs]
    steps.add_row("bare ffmpeg, same command", *cells, "", "")
    sync = meta.get("original_fdatasync_seconds") or []
    if len(sync) == len(jobs):
        cells = [f"{x:.3f}" for x in sync]
        steps.add_row("(fdatasync of the original right after writing it)", *cells, "", "")
    console.print(steps)
    for r in results:
        for err in r.errors:
            console.print(f"[red]{r.phase} round {r.round_no + 1}: {err}[/red]")


def print_goals(console: Console, checks: list[tuple[str, str, bool]]) -> None:
    table = Table(title="Goals", title_justify="left")
    for col in ("goal", "measured", "result"):
        table.add_column(col)
    for name, measured, ok in checks:
        table.add_row(name, measured, "[green]PASS[/green]" if ok else "[red]FAIL[/red]")
    console.print(table)


def parse_args(argv: list[str] | None) -> tuple[Options, bool]:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--duration", type=int, default=60, help="clip seconds (default 60)")
    ap.add_argument("--quick", action="store_true", help="smoke run: a 10 s clip")
    ap.add_argument(
        "--repeat", type=int, default=1, help="rounds, alternating the order (default 1)"
    )
    ap.add_argument(
        "--no-parallel", action="store_true", help="skip per-rung with 2 processes at a time"
    )
    ap.add_argument(
        "--max-wait",
        type=float,
        default=0.0,
        help="seconds to wait at start for the machine to be idle (default 0)",
    )
    ap.add_argument(
        "--job-nice",
        type=int,
        default=None,
        help="niceness the job gives its ffmpeg (default: the product's, 10)",
    )
    ap.add_argument("--json", action="store_true", help="print the results as JSON only")
    args = ap.parse_args(argv)
    duration = 10 if args.quick else args.duration
    opts = Options(
        duration, max(1, args.repeat), not args.no_parallel, args.max_wait, args.job_nice
    )
    return opts, args.json


def main(argv: list[str] | None = None) -> int:
    opts, as_json = parse_args(argv)
    console = Console(stderr=as_json, width=None if sys.stdout.isatty() else 130)
    _, results, meta = run(opts, lambda msg: console.print(f"[dim]{msg}[/dim]"))
    checks = goals(results, opts.duration)
    if as_json:
        doc = {
            "options": asdict(opts),
            "meta": meta,
            "results": [r.summary(opts.duration) for r in results],
            "goals": [{"goal": g, "measured": m, "pass": ok} for g, m, ok in checks],
        }
        print(json.dumps(doc, indent=2))
    else:
        print_tables(console, results, meta, opts)
        print_goals(console, checks)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
