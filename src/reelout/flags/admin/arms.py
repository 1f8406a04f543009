"""A rollout's arms on one flag (pure, on the flag's dict): treatment, a matched control and the
excluded rest in one `fractional` split, and the rollback that gives everyone the control.

Layout, for a treatment share of p percent (1..100), buckets in this order and summing to 100:

    [[treatment, p], [<control>~excluded, max(0, 100 - 2p)], [control, min(p, 100 - p)]]

A unit's bucket is its hash projected on [0, 100) (`fractional.bucket_of`, flag key and
targeting key hashed as before, since neither nor the total ever changes), and the arms are
three consecutive ranges of it: treatment [0, p), excluded [p, 100 - c), control [100 - c, 100)
with c = min(p, 100 - p). So as p rises:

* a unit in treatment stays in treatment (its range only grows);
* a unit in control stays in control while p <= 50 (its range grows downwards); past 50 the
  control shrinks from below and its units move into treatment, never to excluded;
* an excluded unit only ever moves into treatment or control (the excluded range only shrinks,
  from both ends), and it is empty from p = 50 on;
* up to 50 the two arms are the same size (matched), so the analysis compares equal shares.

The excluded units keep the old path: their variant is `<control>~excluded` (the control's key
with the suffix `~excluded`), a variant this writer creates with the control's value, so they
are served exactly what the control is served while exposures and telemetry, which carry the
variant key, tell them apart from the control arm. The suffix is reserved: a variant with that
name is overwritten with the control's value by every write of the arms.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from reelout.errors import BadRequest

TOTAL = 100
EXCLUDED_SUFFIX = "~excluded"


def excluded_variant(control: str) -> str:
    """The variant the units outside both arms get: `<control>~excluded`."""
    return control + EXCLUDED_SUFFIX


@dataclass(frozen=True)
class Shares:
    """The split's weights for a treatment percentage (they always sum to 100)."""

    treatment: int
    excluded: int
    control: int


def shares(percent: int) -> Shares:
    """Treatment p, control matched to p up to 50 (then 100 - p), the rest excluded."""
    check_percent(percent)
    control = min(percent, TOTAL - percent)
    return Shares(percent, TOTAL - percent - control, control)


def check_percent(percent: int) -> int:
    if isinstance(percent, bool) or not isinstance(percent, int) or not 1 <= percent <= TOTAL:
        raise BadRequest(f"the percentage is {percent!r}; give 1 to 100", code="INVALID_PERCENT")
    return percent


def _check_variants(flag: dict[str, Any], key: str, treatment: str, control: str) -> None:
    variants = flag.get("variants", {})
    for name in (treatment, control):
        if name not in variants:
            raise BadRequest(
                f"{key} has no variant {name!r}; its variants are {', '.join(variants)}",
                code="UNKNOWN_VARIANT",
            )
    if treatment == control or treatment == excluded_variant(control):
        raise BadRequest(
            f"the treatment and the control of {key} must be two different variants "
            f"(both are {treatment!r}, or the treatment is the control's excluded variant)",
            code="SAME_ARMS",
        )


def set_rollout_arms(
    flag: dict[str, Any], key: str, treatment: str, control: str, percent: int
) -> None:
    """Make the flag's targeting the arms split for `percent` (see the module docstring) and its
    `<control>~excluded` variant a copy of the control's value. The rollout owns the targeting:
    any other rule is replaced (the audit entry's diff keeps it)."""
    split = shares(percent)
    _check_variants(flag, key, treatment, control)
    excluded = excluded_variant(control)
    flag["variants"][excluded] = copy.deepcopy(flag["variants"][control])
    flag["targeting"] = {
        "fractional": [
            [treatment, split.treatment],
            [excluded, split.excluded],
            [control, split.control],
        ]
    }


@dataclass(frozen=True)
class Arms:
    """What an arms split on a flag says: its treatment, control and treatment percentage."""

    treatment: str
    control: str
    percent: int


def arms_of(flag: dict[str, Any]) -> Arms | None:
    """The arms split the flag's targeting is, or None when it is anything else."""
    rule = flag.get("targeting")
    if not isinstance(rule, dict) or list(rule) != ["fractional"]:
        return None
    buckets = rule["fractional"]
    if not isinstance(buckets, list) or len(buckets) != 3 or not isinstance(buckets[0], list):
        return None
    first, last = buckets[0], buckets[-1]
    if len(first) != 2 or not isinstance(last, list) or not last:
        return None
    treatment, percent, control = first[0], first[1], last[0]
    if not isinstance(treatment, str) or not isinstance(control, str):
        return None
    if isinstance(percent, bool) or not isinstance(percent, int) or not 1 <= percent <= TOTAL:
        return None
    if buckets != _layout(treatment, control, percent):
        return None
    return Arms(treatment, control, percent)


def _layout(treatment: str, control: str, percent: int) -> list[list[Any]]:
    split = shares(percent)
    return [
        [treatment, split.treatment],
        [excluded_variant(control), split.excluded],
        [control, split.control],
    ]


def set_control_for_everyone(flag: dict[str, Any], key: str, control: str) -> None:
    """The rollback: the flag is on, serves `control` to everyone (no targeting) and loses the
    excluded variant the arms made. An explicit variant rather than `state: DISABLED`, which
    would serve each app's code default, not necessarily the control."""
    variants = flag.get("variants", {})
    if control not in variants:
        raise BadRequest(
            f"{key} has no variant {control!r}; its variants are {', '.join(variants)}",
            code="UNKNOWN_VARIANT",
        )
    flag["state"] = "ENABLED"
    flag["defaultVariant"] = control
    flag.pop("targeting", None)
    variants.pop(excluded_variant(control), None)
