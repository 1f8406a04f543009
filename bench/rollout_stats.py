"""Rollout statistics by simulation: false rollbacks under repeated looks (A/A) and how soon a
real regression is rolled back (power), for the one-sided anytime-valid bound that the rollout
controller uses (`reelout.stats.compare.sequential_lower_bound`, spec F6), next to the naive peer
(a fixed-horizon z-test, F1, applied at every look) and the fixed-horizon sample size (F12).

Only the statistics level: counts of units and errors per arm are drawn with a seeded numpy
Generator and handed to the functions the decision code calls; no server, no database.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import machine
from reelout.stats.compare import (
    DEFAULT_N_STAR,
    Estimate,
    sample_size_per_arm,
    sequential_lower_bound,
    sidak,
    two_proportion_z,
    wilson,
)

SEED = 20261203


@dataclass(frozen=True)
class Load:
    """The simulation's size, printed with the results."""

    rollouts: int  # A/A rollouts
    guardrails: int  # independent A/A guardrails per rollout (Šidák)
    looks: int  # looks per A/A rollout
    units_per_look: int  # new units per arm at each look (and per tick in the power runs)
    base_rate: float  # error rate of control (both arms in A/A)
    regressed_rate: float  # error rate of treatment in the power runs
    power_runs: int
    max_ticks: int  # a power run that has not rolled back by then counts as never
    alpha: float
    n_star: int  # total units (both arms) at which the confidence sequence is tightest
    seed: int

    @property
    def alpha_k(self) -> float:
        return sidak(self.alpha, self.guardrails)


@dataclass
class Rate:
    """How many of `runs` rolled back (or rejected) at least once."""

    rule: str
    level: str
    fired: int
    runs: int

    @property
    def rate(self) -> float:
        return self.fired / self.runs

    @property
    def interval(self) -> tuple[float, float]:
        return wilson(self.fired, self.runs)


@dataclass
class Detection:
    """Units per arm (and ticks) until rollback over the power runs, for one rule."""

    rule: str
    alpha: float
    runs: int
    rolled_back: int  # within max_ticks
    median_units: float
    p80_units: float
    p90_units: float
    units_per_tick: int
    by_fixed_n: float  # share of runs rolled back by the fixed-horizon n of the same sidedness
    fixed_n: int  # F12 at the same alpha, one-sided
    fixed_n_two_sided: int  # F12 at the same alpha, two-sided (the 3,823 at 0.05)


# -- the rules ------------------------------------------------------------------------------------


def first_sequential_rollback(
    errors_c: np.ndarray, errors_t: np.ndarray, units: np.ndarray, alpha: float, n_star: int
) -> int:
    """The first look (0-based) where the anytime-valid lower bound on treatment - control is
    above 0, or -1: what the controller does for a guardrail with margin 0."""
    for look, n in enumerate(units.tolist()):
        control = Estimate.of_proportion(int(errors_c[look]), n)
        treatment = Estimate.of_proportion(int(errors_t[look]), n)
        if sequential_lower_bound(control, treatment, alpha=alpha, n_star=n_star) > 0:
            return look
    return -1


def pooled_z(errors_c: np.ndarray, errors_t: np.ndarray, units: np.ndarray) -> np.ndarray:
    """F1's pooled z of treatment against control for equal arms, over arrays of looks (the
    peer, vectorized; checked against `two_proportion_z` in `check_peer`)."""
    pooled = (errors_c + errors_t) / (2 * units)
    se = np.sqrt(pooled * (1 - pooled) * (2 / units))
    diff = (errors_t - errors_c) / units
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(se > 0, diff / np.where(se > 0, se, 1.0), 0.0)


def check_peer(errors_c: np.ndarray, errors_t: np.ndarray, units: np.ndarray) -> float:
    """Largest |z| difference between the vectorized peer and `two_proportion_z` on one series."""
    fast = pooled_z(errors_c, errors_t, units)
    worst = 0.0
    for look, n in enumerate(units.tolist()):
        z, _ = two_proportion_z(int(errors_c[look]), n, int(errors_t[look]), n)
        worst = max(worst, abs(z - float(fast[look])))
    return worst


def z_one_sided(alpha: float) -> float:
    return float(stats.norm.ppf(1 - alpha))


def z_two_sided(alpha: float) -> float:
    return float(stats.norm.ppf(1 - alpha / 2))


# -- A/A ------------------------------------------------------------------------------------------


def cumulative_errors(
    rng: np.random.Generator, shape: tuple[int, ...], units: int, rate: float
) -> np.ndarray:
    """Errors per arm so far at each look: new units at each look, each an error with `rate`."""
    return np.cumsum(rng.binomial(units, rate, size=shape), axis=-1)


def run_aa(load: Load, rng: np.random.Generator) -> tuple[list[Rate], float]:
    """2 arms x rollouts x guardrails x looks, no true difference. Returns the rates and the
    peer check."""
    shape = (load.rollouts, load.guardrails, load.looks)
    units = load.units_per_look * np.arange(1, load.looks + 1)
    errors_c = cumulative_errors(rng, shape, load.units_per_look, load.base_rate)
    errors_t = cumulative_errors(rng, shape, load.units_per_look, load.base_rate)

    def ours(alpha: float) -> np.ndarray:  # fired?, per rollout and guardrail
        fired = np.zeros(shape[:2], dtype=bool)
        for r, g in np.ndindex(*shape[:2]):
            look = first_sequential_rollback(
                errors_c[r, g], errors_t[r, g], units, alpha, load.n_star
            )
            fired[r, g] = look >= 0
        return fired

    z = pooled_z(errors_c, errors_t, units)

    def naive_one(alpha: float) -> np.ndarray:
        return (z > z_one_sided(alpha)).any(axis=-1)

    def naive_two(alpha: float) -> np.ndarray:
        return (np.abs(z) > z_two_sided(alpha)).any(axis=-1)

    def last_look_only(alpha: float) -> np.ndarray:
        return z[..., -1] > z_one_sided(alpha)

    rates: list[Rate] = []
    a, ak, runs = load.alpha, load.alpha_k, load.rollouts
    one = f"one guardrail, alpha = {a:g}"
    for rule, fired in (
        ("ours: anytime-valid lower bound > 0", ours(a)[:, 0]),
        ("peer: one-sided z at every look", naive_one(a)[:, 0]),
        ("peer: two-sided z at every look", naive_two(a)[:, 0]),
        ("reference: one-sided z at the last look only", last_look_only(a)[:, 0]),
    ):
        rates.append(Rate(rule, one, int(fired.sum()), runs))
    fam = f"{load.guardrails} guardrails, Šidák alpha_k = {ak:.5f}, any of them"
    per = f"per guardrail at alpha_k ({load.rollouts:,} x {load.guardrails} series)"
    ours_k = ours(ak)
    for rule, fired in (
        ("ours: anytime-valid lower bound > 0", ours_k),
        ("peer: one-sided z at every look", naive_one(ak)),
        ("peer: two-sided z at every look", naive_two(ak)),
        ("reference: one-sided z at the last look only", last_look_only(ak)),
    ):
        rates.append(Rate(rule, fam, int(fired.any(axis=1).sum()), runs))
        rates.append(Rate(rule, per, int(fired.sum()), fired.size))
    return rates, check_peer(errors_c[0, 0], errors_t[0, 0], units)


# -- power ----------------------------------------------------------------------------------------


def run_power(load: Load, rng: np.random.Generator) -> list[Detection]:
    """A regression from base_rate to regressed_rate in treatment, units_per_look new units per
    arm each tick, until rollback or max_ticks."""
    shape = (load.power_runs, load.max_ticks)
    units = load.units_per_look * np.arange(1, load.max_ticks + 1)
    errors_c = cumulative_errors(rng, shape, load.units_per_look, load.base_rate)
    errors_t = cumulative_errors(rng, shape, load.units_per_look, load.regressed_rate)
    out = []
    for alpha in (load.alpha, load.alpha_k):
        ticks = np.array(
            [
                first_sequential_rollback(errors_c[r], errors_t[r], units, alpha, load.n_star) + 1
                for r in range(load.power_runs)
            ]
        )
        done = ticks > 0
        n_at = np.where(done, ticks * load.units_per_look, np.inf)  # never counts as beyond all
        fixed = sample_size_per_arm(load.base_rate, load.regressed_rate, alpha=2 * alpha)
        fixed_two = sample_size_per_arm(load.base_rate, load.regressed_rate, alpha=alpha)
        q = np.quantile(n_at, [0.5, 0.8, 0.9], method="inverted_cdf")
        out.append(
            Detection(
                rule="ours: anytime-valid lower bound > 0",
                alpha=alpha,
                runs=load.power_runs,
                rolled_back=int(done.sum()),
                median_units=float(q[0]),
                p80_units=float(q[1]),
                p90_units=float(q[2]),
                units_per_tick=load.units_per_look,
                by_fixed_n=float((n_at <= fixed).mean()),
                fixed_n=fixed,
                fixed_n_two_sided=fixed_two,
            )
        )
    return out


def fixed_horizon_power(load: Load, rng: np.random.Generator, alpha: float, n: int) -> float:
    """Simulated power of the one-sided z-test looked at once, at n units per arm (a check that
    F12's n gives the 80% it promises for these rates)."""
    errors_c = rng.binomial(n, load.base_rate, size=load.power_runs)
    errors_t = rng.binomial(n, load.regressed_rate, size=load.power_runs)
    z = pooled_z(errors_c, errors_t, np.full(load.power_runs, n))
    return float((z > z_one_sided(alpha)).mean())


# -- output ---------------------------------------------------------------------------------------


def _pct(x: float) -> str:
    return f"{100 * x:.2f} %"


def _ratio(units: float, fixed: int) -> str:
    return "-" if math.isinf(units) else f"{units / fixed:.2f}x"


def _finite(value: float) -> float | None:
    """JSON has no infinity: a rule that never rolled back gives null."""
    return None if math.isinf(value) else value


def _ticks(units: float, per_tick: int) -> str:
    return "past --max-ticks" if math.isinf(units) else f"{units:,.0f} ({units / per_tick:.0f})"


def _verdict(rate: Rate, target: float) -> str:
    """yes; "noise" when above the target but its Wilson interval reaches below it; NO."""
    if rate.rate <= target:
        return "yes"
    return "noise" if rate.interval[0] <= target else "NO"


def print_aa(console: Console, rates: list[Rate], load: Load) -> None:
    table = Table(title="A/A: share of rollouts rolled back with no true difference")
    for col in (
        "level",
        "rule",
        "rolled back",
        "rate",
        "95 % Wilson",
        "÷ ours",
        "target",
        "≤ target?",
    ):
        table.add_column(col, justify="left" if col in ("level", "rule") else "right")
    ours = {r.level: r.rate for r in rates if r.rule.startswith("ours")}
    for r in rates:
        level_alpha = load.alpha if r.level.startswith("one guardrail") else load.alpha_k
        if r.level.startswith(f"{load.guardrails} guardrails"):
            level_alpha = load.alpha  # the family-wise target
        low, high = r.interval
        ratio = r.rate / ours[r.level] if ours[r.level] else math.inf
        table.add_row(r.level, r.rule, f"{r.fired:,} / {r.runs:,}", _pct(r.rate),
                      f"{_pct(low)} - {_pct(high)}", "—" if r.rule.startswith("ours") else
                      ("∞" if math.isinf(ratio) else f"{ratio:.1f}x"),
                      f"{level_alpha:.5g}", _verdict(r, level_alpha))  # fmt: skip
    console.print(table)


def print_power(
    console: Console, found: list[Detection], load: Load, fixed_power: dict[float, float]
) -> None:
    table = Table(
        title=f"Power: error rate {_pct(load.base_rate)} → {_pct(load.regressed_rate)} in "
        f"treatment, {load.units_per_look} new units per arm per tick: units per arm (ticks)"
    )
    table.add_column("", justify="left")
    for d in found:
        table.add_column(f"one-sided alpha = {d.alpha:.5g}", justify="right")
        table.add_column("÷ fixed one-sided", justify="right")
        table.add_column("÷ fixed two-sided", justify="right")

    def row(label: str, cells: Callable[[Detection], tuple[str, str, str]]) -> None:
        table.add_row(label, *(cell for d in found for cell in cells(d)))

    def units(value: Callable[[Detection], float]) -> Callable[[Detection], tuple[str, str, str]]:
        def cells(d: Detection) -> tuple[str, str, str]:
            v = value(d)
            return _ticks(v, d.units_per_tick), _ratio(v, d.fixed_n), _ratio(v, d.fixed_n_two_sided)

        return cells

    row("ours: median until rollback", units(lambda d: d.median_units))
    row("ours: p80 until rollback", units(lambda d: d.p80_units))
    row("ours: p90 until rollback", units(lambda d: d.p90_units))
    row("ours: rolled back at all", lambda d: (f"{d.rolled_back:,} / {d.runs:,}", "", ""))
    row("ours: rolled back by the one-sided fixed n", lambda d: (_pct(d.by_fixed_n), "", ""))
    row("peer: fixed horizon, one-sided z at alpha, 80 % power (F12 at 2 alpha)",
        lambda d: (f"{d.fixed_n:,}", "1x", ""))  # fmt: skip
    row("peer: its simulated power at that n (one look)",
        lambda d: (_pct(fixed_power[d.alpha]), "", ""))  # fmt: skip
    row("fixed horizon, two-sided z at alpha, 80 % power (F12)",
        lambda d: (f"{d.fixed_n_two_sided:,}", "", "1x"))  # fmt: skip
    console.print(table)


def print_load(console: Console, load: Load) -> None:
    last = load.looks * load.units_per_look
    console.print(
        f"load: A/A {load.rollouts:,} rollouts x {load.guardrails} guardrails x {load.looks} looks, "
        f"{load.units_per_look} new units per arm per look ({last:,} per arm, {2 * last:,} in all "
        f"at the last look; N* = {load.n_star:,}), error rate {_pct(load.base_rate)} in both arms; "
        f"power {load.power_runs:,} runs of up to {load.max_ticks} ticks; seed {load.seed}"
    )


# -- main -----------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> tuple[Load, bool]:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rollouts", type=int, default=2000, help="A/A rollouts (default 2,000)")
    ap.add_argument("--guardrails", type=int, default=5, help="A/A guardrails each (default 5)")
    ap.add_argument("--looks", type=int, default=30, help="looks per A/A rollout (default 30)")
    ap.add_argument(
        "--units",
        type=int,
        default=84,
        help="new units per arm per look/tick (default 84: 2 x 30 x 84 = 5,040 ≈ N* at the end)",
    )
    ap.add_argument("--base-rate", type=float, default=0.02, help="control error rate (0.02)")
    ap.add_argument("--regressed-rate", type=float, default=0.03, help="treatment's (0.03)")
    ap.add_argument("--power-runs", type=int, default=2000, help="power runs (default 2,000)")
    ap.add_argument("--max-ticks", type=int, default=400, help="power run length (default 400)")
    ap.add_argument("--alpha", type=float, default=0.05, help="family-wise alpha (0.05)")
    ap.add_argument("--n-star", type=int, default=DEFAULT_N_STAR, help="N* (default 5,000)")
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--quick", action="store_true", help="smoke run: 200 rollouts, 200 power runs")
    ap.add_argument("--json", action="store_true", help="print the results as JSON only")
    args = ap.parse_args(argv)
    rollouts, power_runs = (200, 200) if args.quick else (args.rollouts, args.power_runs)
    load = Load(rollouts, args.guardrails, args.looks, args.units, args.base_rate,
                args.regressed_rate, power_runs, args.max_ticks, args.alpha, args.n_star,
                args.seed)  # fmt: skip
    return load, args.json


def timed(work: Callable[[], Any]) -> tuple[Any, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    result = work()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def main(argv: list[str] | None = None) -> int:
    load, as_json = parse_args(argv)
    console = Console(stderr=as_json, width=None if sys.stdout.isatty() else 170)
    started, load_before = datetime.now(UTC), os.getloadavg()
    rng = np.random.default_rng(load.seed)
    (rates, peer_gap), aa_wall, aa_cpu = timed(lambda: run_aa(load, rng))
    found, power_wall, power_cpu = timed(lambda: run_power(load, rng))
    fixed_power = {d.alpha: fixed_horizon_power(load, rng, d.alpha, d.fixed_n) for d in found}
    info, load_after = machine(), os.getloadavg()
    if as_json:
        doc = {
            "started": started.isoformat(timespec="seconds"),
            "machine": info,
            "load_average_before": load_before,
            "load_average_after": load_after,
            "load": asdict(load) | {"alpha_k": load.alpha_k},
            "aa": [asdict(r) | {"rate": r.rate, "wilson95": r.interval} for r in rates],
            "power": [
                {k: _finite(v) if isinstance(v, float) else v for k, v in asdict(d).items()}
                for d in found
            ],
            "fixed_horizon_power": [{"alpha": a, "power": p} for a, p in fixed_power.items()],
            "peer_max_abs_z_gap": peer_gap,
            "cpu_s": {"aa": aa_cpu, "power": power_cpu},
            "wall_s": {"aa": aa_wall, "power": power_wall},
        }
        print(json.dumps(doc, indent=2, default=float))
        return 0
    console.print(f"{started:%Y-%m-%d %H:%M} UTC, {info['cpus']} CPUs ({info['cpu']}), "
                  f"load {' '.join(f'{x:.2f}' for x in load_before)} before, "
                  f"{' '.join(f'{x:.2f}' for x in load_after)} after")  # fmt: skip
    print_load(console, load)
    print_aa(console, rates, load)
    print_power(console, found, load, fixed_power)
    console.print(
        f"CPU: A/A {aa_cpu:.1f} s ({aa_wall:.1f} s wall), power {power_cpu:.1f} s "
        f"({power_wall:.1f} s wall); the vectorized peer's z is within {peer_gap:.1e} of "
        "two_proportion_z"
    )
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        raise SystemExit(main())
