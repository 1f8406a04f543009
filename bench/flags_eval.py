"""In-process flag evaluations/s: reelout's engine next to the growthbook and UnleashClient SDKs.

Four rule shapes, written equivalently for each engine, are checked for the expected answers
and then timed on one thread pinned to one core, over 10 000 prepared user contexts.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from typing import Any

from rich.console import Console
from rich.table import Table

from reelout.flags import FlagSet, evaluate, parse_flag_set

PEER_HINT = (
    "the peer SDKs are missing; install them into the venv for this bench only:\n"
    "  .venv/bin/pip install -r bench/requirements-peers.txt"
)

USERS = 10_000
COUNTRIES = ("DE", "FR", "NL", "US", "GB", "ES", "IT", "PL")
IN_LIST = ("DE", "FR", "NL")
SHAPES = ("static", "rollout", "list_rollout", "prerequisite")
SHAPE_TITLES = {
    "static": "static on",
    "rollout": "rollout 25 %",
    "list_rollout": "list + rollout 25 %",
    "prerequisite": "prerequisite (A 50 %)",
}
# The flag each shape evaluates (the prerequisite shape evaluates the child, which reads "parent").
FLAG_OF = {
    "static": "static",
    "rollout": "rollout",
    "list_rollout": "list_rollout",
    "prerequisite": "child",
}
STATIC_GOAL = 500_000.0
RULE_GOAL = 100_000.0
LOAD_LIMIT = 1.5
LOAD_WAIT_S = 300.0

# -- the rules, once per engine ----------------------------------------------------------------


def _bool_flag(default_variant: str, targeting: Any = None) -> dict[str, Any]:
    flag: dict[str, Any] = {
        "state": "ENABLED",
        "variants": {"on": True, "off": False},
        "defaultVariant": default_variant,
    }
    if targeting is not None:
        flag["targeting"] = targeting
    return flag


def flagd_document() -> dict[str, Any]:
    """reelout: a flagd flag set; fractional generation v3 (the default, pinned explicitly)."""
    rollout_25 = {"fractional": [["on", 25], ["off", 75]]}
    return {
        "flags": {
            "static": _bool_flag("on"),
            "rollout": _bool_flag("off", rollout_25),
            "list_rollout": _bool_flag(
                "off", {"if": [{"in": [{"var": "country"}, list(IN_LIST)]}, rollout_25, "off"]}
            ),
            "parent": _bool_flag("off", {"fractional": [["on", 50], ["off", 50]]}),
            "child": _bool_flag("off", {"if": [{"var": "$flags.parent"}, "on", "off"]}),
        },
        "metadata": {"reelout.fractional": "v3"},
    }


def growthbook_features() -> dict[str, Any]:
    """growthbook: features with defaultValue and force rules with coverage on `id`."""

    def rollout(coverage: float, **extra: Any) -> dict[str, Any]:
        return {"force": True, "coverage": coverage, "hashAttribute": "id", **extra}

    country = {"country": {"$in": list(IN_LIST)}}
    parent_on = {"id": "parent", "condition": {"value": True}}
    return {
        "static": {"defaultValue": True},
        "rollout": {"defaultValue": False, "rules": [rollout(0.25)]},
        "list_rollout": {"defaultValue": False, "rules": [rollout(0.25, condition=country)]},
        "parent": {"defaultValue": False, "rules": [rollout(0.5)]},
        "child": {
            "defaultValue": False,
            "rules": [{"parentConditions": [parent_on], "force": True}],
        },
    }


def unleash_features() -> dict[str, Any]:
    """UnleashClient: a client-API features payload (what the server would send)."""

    def flexible(rollout: int, group: str) -> dict[str, Any]:
        params = {"rollout": str(rollout), "stickiness": "userId", "groupId": group}
        return {"name": "flexibleRollout", "parameters": params}

    def feature(name: str, strategy: dict[str, Any], **extra: Any) -> dict[str, Any]:
        return {"name": name, "type": "release", "enabled": True, "strategies": [strategy], **extra}

    country = {"contextName": "country", "operator": "IN", "values": list(IN_LIST)}
    default = {"name": "default", "parameters": {}}
    return {
        "version": 2,
        "features": [
            feature("static", default),
            feature("rollout", flexible(25, "rollout")),
            feature("list_rollout", {**flexible(25, "list_rollout"), "constraints": [country]}),
            feature("parent", flexible(50, "parent")),
            feature("child", default, dependencies=[{"feature": "parent", "enabled": True}]),
        ],
    }


# -- engines -----------------------------------------------------------------------------------


@dataclass
class Users:
    """The same 10 000 users, in each engine's context shape."""

    ids: list[str]
    countries: list[str]

    @classmethod
    def make(cls, count: int = USERS) -> Users:
        ids = [f"user-{i:05d}" for i in range(count)]
        return cls(ids, [COUNTRIES[(i * 7 + i // 8) % len(COUNTRIES)] for i in range(count)])

    def contexts(self, make: ContextMaker) -> list[dict[str, Any]]:
        return [make(u, c) for u, c in zip(self.ids, self.countries, strict=True)]


ContextMaker = Callable[[str | None, str | None], dict[str, Any]]
"""Builds one engine's context from a user key and a country (either may be missing)."""


def _maker(user_attribute: str) -> ContextMaker:
    def make(user: str | None, country: str | None) -> dict[str, Any]:
        ctx: dict[str, Any] = {}
        if user is not None:
            ctx[user_attribute] = user
        if country is not None:
            ctx["country"] = country
        return ctx

    return make


@dataclass
class Engine:
    """One engine: answers one flag for one context, and times a pass over many contexts."""

    name: str
    version: str
    answer: Callable[[str, Any], bool]
    time_pass: Callable[[str, list[Any]], int]
    make_context: ContextMaker
    contexts: list[Any] = field(default_factory=list)
    note: str = ""


def reelout_engine(users: Users, fast_paths: bool) -> Engine:
    flag_set: FlagSet = parse_flag_set(flagd_document(), fast_paths=fast_paths)
    clock = time.time

    def answer(key: str, context: Mapping[str, Any]) -> bool:
        res = evaluate(flag_set, key, context, default=False, expected_type=bool, now=clock())
        if res.error_code is not None:
            raise RuntimeError(f"reelout {key}: {res.error_code} {res.error_message}")
        return bool(res.value)

    def time_pass(key: str, contexts: list[Any]) -> int:
        ev, fs, now = evaluate, flag_set, clock
        start = time.perf_counter_ns()
        for ctx in contexts:
            ev(fs, key, ctx, default=False, expected_type=bool, now=now())
        return time.perf_counter_ns() - start

    name = "reelout" if fast_paths else "reelout, fast paths off"
    make = _maker("targetingKey")
    return Engine(name, _version("reelout"), answer, time_pass, make, users.contexts(make))


def growthbook_engine(users: Users) -> Engine:
    from growthbook import GrowthBook

    # One instance, its attributes swapped per evaluation: the SDK's way of asking for another
    # user without rebuilding the instance (no client key, so it never fetches or refreshes).
    gb = GrowthBook(attributes={}, features=growthbook_features())

    def answer(key: str, attributes: dict[str, Any]) -> bool:
        gb.set_attributes(attributes)
        return bool(gb.is_on(key))

    def time_pass(key: str, contexts: list[Any]) -> int:
        set_attributes, is_on = gb.set_attributes, gb.is_on
        start = time.perf_counter_ns()
        for attributes in contexts:
            set_attributes(attributes)
            is_on(key)
        return time.perf_counter_ns() - start

    make = _maker("id")
    version = _version("growthbook")
    note = "set_attributes + is_on"
    return Engine("growthbook", version, answer, time_pass, make, users.contexts(make), note)


def unleash_engine(users: Users) -> Engine:
    from UnleashClient.cache import BaseCache
    from UnleashClient.clients.unleash_client import UnleashClient
    from UnleashClient.constants import FEATURES_URL
    from UnleashClient.utils import InstanceAllowType

    class MemoryCache(BaseCache):
        """A bootstrapped in-memory cache: no file, no fetch."""

        def __init__(self, features: dict[str, Any]) -> None:
            self._data: dict[str, Any] = {FEATURES_URL: json.dumps(features)}
            self.bootstrapped = True

        def set(self, key: str, value: Any) -> None:
            self._data[key] = value

        def mset(self, data: dict[str, Any]) -> None:
            self._data.update(data)

        def get(self, key: str, default: Any | None = None) -> Any:
            return self._data.get(key, default)

        def exists(self, key: str) -> bool:
            return key in self._data

        def destroy(self) -> None:
            self._data.clear()

    # Bootstrapped from the cache in the constructor; initialize_client() is never called, so
    # there is no registration, no polling, no metrics job and no scheduler thread. The URL is
    # never contacted.
    client = UnleashClient(
        url="http://127.0.0.1:9/api",
        app_name="reelout-bench",
        disable_metrics=True,
        disable_registration=True,
        cache=MemoryCache(unleash_features()),
        multiple_instance_mode=InstanceAllowType.SILENTLY_ALLOW,
    )
    if client.is_initialized or not client.unleash_bootstrapped:
        raise RuntimeError("UnleashClient is not running offline from its bootstrap")

    def answer(key: str, context: dict[str, Any]) -> bool:
        return bool(client.is_enabled(key, context))

    def time_pass(key: str, contexts: list[Any]) -> int:
        is_enabled = client.is_enabled
        start = time.perf_counter_ns()
        for ctx in contexts:
            is_enabled(key, ctx)
        return time.perf_counter_ns() - start

    note = "is_enabled (Rust engine yggdrasil via FFI)"
    version = f"{_version('UnleashClient')} (yggdrasil-engine {_version('yggdrasil-engine')})"
    make = _maker("userId")
    return Engine("UnleashClient", version, answer, time_pass, make, users.contexts(make), note)


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "?"


def build_engines(users: Users) -> list[Engine]:
    try:
        peers = [growthbook_engine(users), unleash_engine(users)]
    except ImportError as exc:
        raise SystemExit(f"{exc}\n{PEER_HINT}") from exc
    return [reelout_engine(users, True), reelout_engine(users, False), *peers]


# -- checks ------------------------------------------------------------------------------------


@dataclass
class Check:
    engine: str
    shape: str
    what: str
    measured: str
    expected: str
    ok: bool


def check_engine(engine: Engine, users: Users) -> list[Check]:
    """The rules give the expected answers: fixed contexts, then shares over all users."""
    ctxs = engine.contexts
    answers = {s: [engine.answer(FLAG_OF[s], c) for c in ctxs] for s in SHAPES}
    parent = [engine.answer("parent", c) for c in ctxs]
    listed = [c in IN_LIST for c in users.countries]
    out: list[Check] = []

    def add(shape: str, what: str, measured: str, expected: str, ok: bool) -> None:
        out.append(Check(engine.name, shape, what, measured, expected, ok))

    def share(values: list[bool]) -> float:
        return sum(values) / len(values) if values else 0.0

    add(
        "static",
        "on for every user",
        f"{sum(answers['static'])}/{len(ctxs)}",
        "all",
        all(answers["static"]),
    )
    rate = share(answers["rollout"])
    add("rollout", "share on", f"{rate:.1%}", "20-30 %", 0.20 <= rate <= 0.30)
    lr = answers["list_rollout"]
    outside = [a for a, hit in zip(lr, listed, strict=True) if not hit]
    inside = [a for a, hit in zip(lr, listed, strict=True) if hit]
    add(
        "list_rollout",
        "on outside DE/FR/NL",
        f"{sum(outside)}/{len(outside)}",
        "0",
        not any(outside),
    )
    rate = share(inside)
    add("list_rollout", "share on inside DE/FR/NL", f"{rate:.1%}", "20-30 %", 0.20 <= rate <= 0.30)
    rate = share(parent)
    add("prerequisite", "share of A (parent) on", f"{rate:.1%}", "45-55 %", 0.45 <= rate <= 0.55)
    same = sum(a == p for a, p in zip(answers["prerequisite"], parent, strict=True))
    add("prerequisite", "B == A for every user", f"{same}/{len(ctxs)}", "all", same == len(ctxs))
    # Fixed contexts, the same expected answers in every engine.
    fixed: list[tuple[str, str | None, str | None, str, bool]] = [
        ("static", None, None, "no attributes at all: on", True),
        ("rollout", None, "DE", "no user key: off", False),
        ("list_rollout", None, "DE", "no user key, DE: off", False),
        ("list_rollout", users.ids[0], None, "no country: off", False),
        ("list_rollout", users.ids[0], "de", "country 'de' (case differs): off", False),
        ("prerequisite", None, "DE", "no user key (A off): off", False),
    ]
    for shape, user, country, what, expected in fixed:
        got = engine.answer(FLAG_OF[shape], engine.make_context(user, country))
        add(shape, what, str(got), str(expected), got == expected)
    return out


# -- timing ------------------------------------------------------------------------------------


@dataclass
class Timing:
    engine: str
    shape: str
    evals: int
    ns: list[int] = field(default_factory=list)

    @property
    def rates(self) -> list[float]:
        return [self.evals / (n / 1e9) for n in self.ns if n > 0]

    @property
    def median(self) -> float:
        return statistics.median(self.rates) if self.rates else 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "engine": self.engine,
            "shape": self.shape,
            "evals_per_repeat": self.evals,
            "median_evals_per_s": round(self.median),
            "evals_per_s_each_repeat": [round(r) for r in self.rates],
            "ns_per_eval_median": round(1e9 / self.median, 1) if self.median else None,
        }


def time_all(
    engines: list[Engine], passes: int, repeats: int, say: Callable[[str], None]
) -> list[Timing]:
    """Each repeat times every engine on every shape; the order rotates between repeats so a
    change in the machine's load does not always land on the same engine."""
    timings = {
        (e.name, s): Timing(e.name, s, passes * len(e.contexts)) for e in engines for s in SHAPES
    }
    for engine in engines:  # warm-up: one pass per shape
        for shape in SHAPES:
            engine.time_pass(FLAG_OF[shape], engine.contexts)
    for rep in range(repeats):
        say(f"repeat {rep + 1} of {repeats}")
        order = engines[rep % len(engines) :] + engines[: rep % len(engines)]
        for shape in SHAPES:
            for engine in order:
                gc.collect()
                total = 0
                for _ in range(passes):
                    total += engine.time_pass(FLAG_OF[shape], engine.contexts)
                timings[(engine.name, shape)].ns.append(total)
    return list(timings.values())


# -- machine -----------------------------------------------------------------------------------


def pin_to_one_core() -> int | None:
    """Pin this process to one core (the last one the process may use)."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    cpu = max(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    return cpu


def wait_for_quiet(say: Callable[[str], None]) -> dict[str, Any]:
    load = first = os.getloadavg()
    say(f"load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    waited = 0.0
    start = time.monotonic()
    while load[0] > LOAD_LIMIT and waited < LOAD_WAIT_S:
        time.sleep(10)
        waited = time.monotonic() - start
        load = os.getloadavg()
    if waited:
        state = "dropped" if load[0] <= LOAD_LIMIT else "did not drop"
        say(
            f"waited {waited:.0f} s for the 1-min load to fall to {LOAD_LIMIT}: it {state} ({load[0]:.2f})"
        )
    return {"load_at_start": first, "waited_s": round(waited), "load_after_wait": load}


def machine_line() -> str:
    cpu = "?"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{os.cpu_count()} CPUs ({cpu}), {platform.system()} {platform.release()}, Python {platform.python_version()}"


# -- reporting ---------------------------------------------------------------------------------


def _rate(value: float) -> str:
    return f"{value / 1000:,.0f}k/s" if value >= 1000 else f"{value:,.0f}/s"


def _find(timings: list[Timing], engine: str, shape: str) -> Timing:
    return next(t for t in timings if t.engine == engine and t.shape == shape)


def print_checks(console: Console, checks: list[Check]) -> None:
    table = Table(title="Checks before timing (each engine on its own rules)", title_justify="left")
    for col in ("engine", "shape", "check", "measured", "expected", "result"):
        table.add_column(col)
    for c in checks:
        result = "[green]ok[/green]" if c.ok else "[red]MISMATCH[/red]"
        table.add_row(c.engine, c.shape, c.what, c.measured, c.expected, result)
    console.print(table)


def print_timings(console: Console, timings: list[Timing], engines: list[Engine]) -> None:
    names = [e.name for e in engines]
    table = Table(
        title="Evaluations/s, one thread on one core (median of repeats)", title_justify="left"
    )
    table.add_column("shape")
    for name in names:
        table.add_column(name, justify="right")
    for peer in ("growthbook", "UnleashClient"):
        table.add_column(f"reelout / {peer}", justify="right")
    table.add_column("fast paths buy", justify="right")
    for shape in SHAPES:
        med = {n: _find(timings, n, shape).median for n in names}
        row = [SHAPE_TITLES[shape], *(_rate(med[n]) for n in names)]
        row += [_ratio(med["reelout"], med[p]) for p in ("growthbook", "UnleashClient")]
        row.append(_ratio(med["reelout"], med["reelout, fast paths off"]))
        table.add_row(*row)
    console.print(table)
    each = Table(
        title="Each repeat (evals/s, thousands) and ns per evaluation", title_justify="left"
    )
    for col in ("shape", "engine", "each repeat", "ns/eval (median)"):
        each.add_column(col, justify="left" if col in ("shape", "engine") else "right")
    for shape in SHAPES:
        for name in names:
            t = _find(timings, name, shape)
            rates = " / ".join(f"{r / 1000:.0f}" for r in t.rates)
            each.add_row(shape, name, rates, f"{1e9 / t.median:,.0f}" if t.median else "-")
    console.print(each)


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "-"


def goals(timings: list[Timing], checks: list[Check]) -> list[tuple[str, str, bool]]:
    def med(engine: str, shape: str) -> float:
        return _find(timings, engine, shape).median

    out = [
        (
            "checks: every engine gives the expected answers",
            f"{sum(c.ok for c in checks)}/{len(checks)}",
            all(c.ok for c in checks),
        ),
        (
            "static >= 500k evals/s",
            _rate(med("reelout", "static")),
            med("reelout", "static") >= STATIC_GOAL,
        ),
        (
            "list + rollout >= 100k evals/s",
            _rate(med("reelout", "list_rollout")),
            med("reelout", "list_rollout") >= RULE_GOAL,
        ),
    ]
    for peer in ("growthbook", "UnleashClient"):
        ratios = {s: med("reelout", s) / med(peer, s) for s in SHAPES if med(peer, s)}
        worst = min(ratios, key=lambda s: ratios[s])
        out.append(
            (
                f"ahead of {peer} on every shape",
                f"lowest {ratios[worst]:.2f}x ({worst})",
                ratios[worst] > 1.0,
            )
        )
    return out


def print_goals(console: Console, checks: list[tuple[str, str, bool]]) -> None:
    table = Table(title="Goals (reelout)", title_justify="left")
    for col in ("goal", "measured", "result"):
        table.add_column(col)
    for name, measured, ok in checks:
        table.add_row(name, measured, "[green]PASS[/green]" if ok else "[red]FAIL[/red]")
    console.print(table)


# -- main --------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument(
        "--passes", type=int, default=5, help="passes over the 10 000 users per repeat (default 5)"
    )
    ap.add_argument(
        "--repeat", type=int, default=7, help="repeats; the median is reported (default 7)"
    )
    ap.add_argument(
        "--quick", action="store_true", help="smoke run: 1 pass, 3 repeats, no load wait"
    )
    ap.add_argument("--no-wait", action="store_true", help="do not wait for the load to drop")
    ap.add_argument("--json", action="store_true", help="print the results as JSON only")
    args = ap.parse_args(argv)
    if args.quick:
        args.passes, args.repeat, args.no_wait = 1, 3, True
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    console = Console(stderr=args.json, width=None if sys.stdout.isatty() else 140)

    def say(msg: str) -> None:
        console.print(f"[dim]{msg}[/dim]")

    logging.getLogger("UnleashClient").setLevel(logging.ERROR)
    started = datetime.now(UTC)
    cpu = pin_to_one_core()
    load: dict[str, Any] = {"load_at_start": os.getloadavg()}
    if args.no_wait:
        say("load average at start: {:.2f} {:.2f} {:.2f}".format(*load["load_at_start"]))
    else:
        load = wait_for_quiet(say)
    users = Users.make()
    engines = build_engines(users)
    say(f"machine: {machine_line()}; pinned to CPU {cpu}")
    say("versions: " + ", ".join(f"{e.name} {e.version}" for e in engines if "fast" not in e.name))
    checks = [c for e in engines for c in check_engine(e, users)]
    if not args.json:
        print_checks(console, checks)
    if not all(c.ok for c in checks):
        console.print("[red]a rule gives the wrong answers: not timing[/red]")
        return 1
    timed_from = datetime.now(UTC)
    timings = time_all(engines, args.passes, args.repeat, say)
    finished = datetime.now(UTC)
    results = goals(timings, checks)
    if args.json:
        doc = {
            "started_utc": started.isoformat(timespec="seconds"),
            "timing_started_utc": timed_from.isoformat(timespec="seconds"),
            "finished_utc": finished.isoformat(timespec="seconds"),
            "machine": machine_line(),
            "pinned_cpu": cpu,
            "load": load,
            "load_at_end": os.getloadavg(),
            "passes": args.passes,
            "repeats": args.repeat,
            "users": USERS,
            "engines": [{"name": e.name, "version": e.version, "note": e.note} for e in engines],
            "checks": [asdict(c) for c in checks],
            "timings": [t.summary() for t in timings],
            "goals": [{"goal": g, "measured": m, "pass": ok} for g, m, ok in results],
        }
        print(json.dumps(doc, indent=2))
    else:
        print_timings(console, timings, engines)
        print_goals(console, results)
        end = os.getloadavg()
        say(
            f"started {started:%Y-%m-%d %H:%M:%S}, timed {timed_from:%H:%M:%S} to "
            f"{finished:%H:%M:%S} UTC; "
            f"load average at end: {end[0]:.2f} {end[1]:.2f} {end[2]:.2f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
