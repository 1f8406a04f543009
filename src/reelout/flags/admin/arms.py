"""A rollout's arms on one flag (pure, on the flag's dict): treatment, a matched control and the
excluded rest in one `fractional` split under the rollout's own variant keys, and its end (a
rollback gives everyone the control, a completion the treatment).

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

The two arms are served under keys of their own rollout too: rollout N serves its treatment as
`<treatment>~r<N>` and its control as `<control>~r<N>` (`Arms.suffix`, `rollout_suffix`), two
variants this writer creates as copies of the plain ones. The rollups count a viewer's exposure
to a variant from their first exposure to that variant ever; the plain control (the flag's old
default) was served to everyone before the rollout, so its exposures would mostly start before
the analysis window, while every exposure to `<control>~r<N>` starts inside the rollout. An
empty suffix (a rollout made before the arms had keys of their own) serves the plain names.
When the rollout ends, `set_variant_for_everyone` serves one plain variant to everyone and drops
the rollout's variants (the `~r<N>` copies and `~excluded`).
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any

from reelout.errors import BadRequest
from reelout.variant_keys import (
    ROLLOUT_SUFFIX,
    excluded_variant,
)

TOTAL = 100
MAX_SERVED_KEY = 255
"""The longest variant key the arms may serve: the telemetry events' limit on a variant (and on
a `flags` value), so every app can report what it was served."""
_ROLLOUT_KEY = re.compile(re.escape(ROLLOUT_SUFFIX) + r"[0-9]+\Z")


@dataclass(frozen=True)
class Shares:
    """The split's weights for a treatment percentage (they always sum to 100)."""

    treatment: int
    excluded: int
    control: int


@dataclass(frozen=True)
class Arms:
    """A rollout's arms: its plain treatment and control variants, the treatment percentage and
    the suffix of the keys they are served as (`~r<N>`; "" serves the plain names)."""

    treatment: str
    control: str
    percent: int
    suffix: str = ""

    @property
    def served_treatment(self) -> str:
        return self.treatment + self.suffix

    @property
    def served_control(self) -> str:
        return self.control + self.suffix

    @property
    def own_variants(self) -> tuple[str, ...]:
        """The variants the arms writer makes for this rollout (the excluded one included)."""
        copies = (self.served_treatment, self.served_control) if self.suffix else ()
        return (*copies, excluded_variant(self.control))


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


def _check_served(arms: Arms) -> None:
    served = (arms.served_treatment, arms.served_control, excluded_variant(arms.control))
    too_long = [name for name in served if len(name) > MAX_SERVED_KEY]
    if too_long:
        raise BadRequest(
            f"the arms would be served as {too_long[0][:40]!r}… ({len(too_long[0])} characters); "
            f"the telemetry takes variant keys of at most {MAX_SERVED_KEY}: give the treatment "
            "and the control shorter names",
            code="VARIANT_KEY_TOO_LONG",
            details={"max_chars": MAX_SERVED_KEY},
        )


def set_rollout_arms(flag: dict[str, Any], key: str, arms: Arms) -> None:
    """Make the flag's targeting the arms split (see the module docstring), its
    `<control>~excluded` variant a copy of the control's value and, with a suffix, the arms'
    own keys copies of their plain variants. The rollout owns the targeting: any other rule is
    replaced (the audit entry's diff keeps it)."""
    shares(arms.percent)
    _check_variants(flag, key, arms.treatment, arms.control)
    _check_served(arms)
    variants = flag["variants"]
    treatment, control = variants[arms.treatment], variants[arms.control]
    variants[excluded_variant(arms.control)] = copy.deepcopy(control)
    variants[arms.served_treatment] = copy.deepcopy(treatment)
    variants[arms.served_control] = copy.deepcopy(control)
    flag["targeting"] = {"fractional": _layout(arms)}


def arms_of(flag: dict[str, Any]) -> Arms | None:
    """The arms split the flag's targeting is, or None when it is anything else (a rollout's
    `~r<N>` keys read back as the plain variants and that suffix)."""
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
    found = _unsuffixed(treatment, control, percent)
    return found if buckets == _layout(found) else None


def _unsuffixed(treatment: str, control: str, percent: int) -> Arms:
    """The arms whose served keys are `treatment` and `control`: a `~r<N>` suffix both share
    split off, else the plain names."""
    suffix = _ROLLOUT_KEY.search(control)
    if suffix is not None and treatment.endswith(suffix.group()):
        cut = len(suffix.group())
        return Arms(treatment[:-cut], control[:-cut], percent, suffix.group())
    return Arms(treatment, control, percent)


def _layout(arms: Arms) -> list[list[Any]]:
    split = shares(arms.percent)
    return [
        [arms.served_treatment, split.treatment],
        [excluded_variant(arms.control), split.excluded],
        [arms.served_control, split.control],
    ]


def set_variant_for_everyone(flag: dict[str, Any], key: str, variant: str, arms: Arms) -> None:
    """The end of a rollout: the flag is on, serves the plain `variant` to everyone (no
    targeting) and loses the variants the arms made (`Arms.own_variants`). The rollback serves
    the control, the completion the treatment. An explicit variant rather than
    `state: DISABLED`, which would serve each app's code default, not necessarily the control."""
    variants = flag.get("variants", {})
    if variant not in variants:
        raise BadRequest(
            f"{key} has no variant {variant!r}; its variants are {', '.join(variants)}",
            code="UNKNOWN_VARIANT",
        )
    flag["state"] = "ENABLED"
    flag["defaultVariant"] = variant
    flag.pop("targeting", None)
    for made in arms.own_variants:
        if made not in (arms.treatment, arms.control):
            variants.pop(made, None)
