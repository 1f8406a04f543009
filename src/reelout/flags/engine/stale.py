"""Whether a flag definition can only ever serve one outcome to everyone (pure, I/O-free).

Conservative by design: a rule is only understood when its result is a literal variant name, a
literal null (the default variant), an `if`/`?:` whose branches are understood (conditions are
never looked at) or a `fractional` whose buckets name literal variants. A `fractional` can also
give null (no usable targeting key), so its outcomes include the default variant. Anything else
(`var`, comparisons, computed bucket names, names that are not variants) is "not sure", and a flag
we are not sure about is never reported as one-variant.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class StaleWhy(StrEnum):
    disabled = "disabled"
    no_targeting = "no_targeting"
    one_variant_targeting = "one_variant_targeting"


DEFAULT = None
"""An outcome meaning "the targeting gave null": the flag serves its default variant."""

Outcomes = frozenset[str | None]


@dataclass(frozen=True)
class OneVariant:
    """What everyone gets from a flag: a variant (None: the caller's code default) and why."""

    variant: str | None
    value: Any
    why: StaleWhy
    detail: str


def outcomes(rule: Any, evaluators: Mapping[str, Any]) -> Outcomes | None:
    """Every result a targeting rule can give (None in the set: null), or None when unsure."""
    if rule is None or isinstance(rule, str):
        return frozenset({rule})
    if isinstance(rule, bool):
        return frozenset({"true" if rule else "false"})  # the evaluator names booleans so
    if not isinstance(rule, Mapping) or len(rule) != 1:
        return None
    operator, raw = next(iter(rule.items()))
    args = raw if isinstance(raw, list) else [raw]
    if operator == "$ref":
        return _ref(raw, evaluators)
    if operator in ("if", "?:"):
        return _branches(args, evaluators)
    if operator == "fractional":
        return _fractional(args)
    return None


def _ref(name: Any, evaluators: Mapping[str, Any]) -> Outcomes | None:
    if not isinstance(name, str) or name not in evaluators:
        return None
    shared = evaluators[name]
    if isinstance(shared, Mapping) and "$ref" in shared:
        return None  # refs inside evaluators are refused by validation; never guess
    return outcomes(shared, evaluators)


def _branches(args: list[Any], evaluators: Mapping[str, Any]) -> Outcomes | None:
    """`if` returns one of its `then` values, or its last argument (null when there is none)."""
    values = [args[i + 1] for i in range(0, len(args) - 1, 2)]
    values.append(args[-1] if len(args) % 2 == 1 else None)
    found: set[str | None] = set()
    for value in values:
        more = outcomes(value, evaluators)
        if more is None:
            return None
        found |= more
    return frozenset(found)


def _fractional(args: list[Any]) -> Outcomes | None:
    """The variants of buckets with weight above 0, plus null (no targeting key, bad input)."""
    buckets = args if args and isinstance(args[0], list) else args[1:]
    found: set[str | None] = {DEFAULT}
    for bucket in buckets:
        if not isinstance(bucket, list) or not bucket or len(bucket) > 2:
            return None
        name = bucket[0]
        weight = bucket[1] if len(bucket) == 2 else 1
        if isinstance(weight, bool) or not isinstance(weight, int | float):
            return None
        if name is not None and not isinstance(name, str):
            return None
        if weight > 0:
            found.add(name)
    return frozenset(found)


def one_variant(flag: Mapping[str, Any], evaluators: Mapping[str, Any]) -> OneVariant | None:
    """What everyone gets from `flag` if it can only give one outcome; None otherwise (or unsure)."""
    variants = flag.get("variants")
    if not isinstance(variants, Mapping):
        return None
    if flag.get("state") == "DISABLED":
        return OneVariant(
            None, None, StaleWhy.disabled, "disabled: every app gets its code default"
        )
    if flag.get("state") != "ENABLED":
        return None
    default = flag.get("defaultVariant")
    if default is not None and not isinstance(default, str):
        return None
    targeting = flag.get("targeting") or None
    if targeting is None:
        if default not in variants:
            return None
        detail = f"no targeting: everyone gets the default variant {default!r}"
        return OneVariant(default, variants[default], StaleWhy.no_targeting, detail)
    if not isinstance(targeting, Mapping):
        return None
    return _single_outcome(targeting, default, variants, evaluators)


def _single_outcome(
    targeting: Any, default: Any, variants: Mapping[str, Any], evaluators: Mapping[str, Any]
) -> OneVariant | None:
    found = outcomes(targeting, evaluators)
    if found is None:
        return None
    served = {default if name is DEFAULT else name for name in found}
    if len(served) != 1:
        return None
    (variant,) = served
    if not isinstance(variant, str) or variant not in variants:
        return None  # an error or the code default for some: not one variant we can name
    detail = f"the targeting can only give {variant!r}"
    return OneVariant(variant, variants[variant], StaleWhy.one_variant_targeting, detail)


ALL_EVALUATORS = "*"
"""In `evaluators_changed`: the change replaced every shared evaluator (or the whole set)."""


def refs(rule: Any) -> set[str]:
    """The names of the shared evaluators a targeting rule uses through `$ref`."""
    if isinstance(rule, list):
        return set().union(*(refs(item) for item in rule))
    if not isinstance(rule, Mapping):
        return set()
    found = {rule["$ref"]} if isinstance(rule.get("$ref"), str) else set()
    return found.union(*(refs(value) for key, value in rule.items() if key != "$ref"))


def _segments(pointer: Any) -> list[str]:
    if not isinstance(pointer, str):
        return []
    return [part.replace("~1", "/").replace("~0", "~") for part in pointer.split("/")[1:]]


def evaluators_changed(patch: list[Mapping[str, Any]]) -> set[str]:
    """The shared evaluators an RFC 6902 patch changes (ALL_EVALUATORS: possibly every one)."""
    found: set[str] = set()
    for op in patch:
        for pointer in (op.get("path"), op.get("from")):
            parts = _segments(pointer)
            if pointer == "" or parts == ["$evaluators"]:
                found.add(ALL_EVALUATORS)
            elif parts[:1] == ["$evaluators"]:
                found.add(parts[1])
    return found
