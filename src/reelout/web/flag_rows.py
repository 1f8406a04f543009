"""What the Flags page shows of one flag: its one-line targeting summary and its split. Pure."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from reelout.flags.engine.fractional import splits, weight_of

SUMMARY_CHARS = 90
COMPARISONS = ("==", "===", "!=", "!==", "<", "<=", ">", ">=", "in", "starts_with", "ends_with")


@dataclass(frozen=True)
class Segment:
    """One variant's share of a split, in percent, and where its bar starts (0-100)."""

    variant: str
    percent: float
    start: float
    index: int

    @property
    def label(self) -> str:
        return f"{self.variant} {percent_text(self.percent)}%"


@dataclass(frozen=True)
class FlagRow:
    """One line of the flags table."""

    key: str
    slug: str
    flag: dict[str, Any]
    summary: str
    split: list[Segment]
    rollout: tuple[str, float] | None  # the rolled-out variant and its percent, if settable

    @property
    def enabled(self) -> bool:
        return self.flag.get("state") == "ENABLED"

    @property
    def variants(self) -> list[tuple[str, str]]:
        return [(name, json.dumps(value)) for name, value in self.flag.get("variants", {}).items()]

    @property
    def split_label(self) -> str:
        return ", ".join(segment.label for segment in self.split)


def slug(key: str) -> str:
    """A flag key as it can appear in an element id."""
    return re.sub(r"[^A-Za-z0-9_-]", "-", key)


def percent_text(value: float) -> str:
    return f"{value:.1f}".removesuffix(".0")


def buckets(args: list[Any]) -> tuple[str, list[tuple[str, int]]]:
    """A `fractional`'s bucketing value (as words) and its (variant, weight) buckets."""
    by, rest = ("targetingKey", args) if isinstance(args[0], list) else (_term(args[0]), args[1:])
    out = []
    for bucket in rest:
        if isinstance(bucket, list) and bucket:
            weight = weight_of(bucket[1]) if len(bucket) > 1 else 1
            out.append((str(bucket[0]), weight or 0))
    return by, out


def split_of(weights: list[tuple[str, int]]) -> list[Segment]:
    total = sum(weight for _, weight in weights)
    segments, start = [], 0.0
    for index, (variant, weight) in enumerate(weights):
        share = 100 * weight / total if total else 0.0
        segments.append(Segment(variant, share, start, index))
        start += share
    return segments


def flag_split(flag: dict[str, Any]) -> list[Segment]:
    """The split the bar draws: a single `fractional`'s weights; without targeting, everyone
    on the default variant; otherwise (rules decide per user) none."""
    targeting = flag.get("targeting")
    if not targeting:
        default = flag.get("defaultVariant")
        return [Segment(str(default), 100.0, 0.0, 0)] if default is not None else []
    found = splits(targeting)
    return split_of(buckets(found[0])[1]) if len(found) == 1 else []


def _term(node: Any) -> str:
    """A JsonLogic value in a few words: `var` names, `$ref`s, comparisons, and/or/not."""
    if isinstance(node, dict) and len(node) == 1:
        operator, args = next(iter(node.items()))
        args = args if isinstance(args, list) else [args]
        if operator == "var":
            return str(args[0]).removeprefix("$flags.") if args else "data"
        if operator == "$ref":
            return str(args[0])
        if operator in COMPARISONS and len(args) == 2:
            return f"{_term(args[0])} {operator} {_term(args[1])}"
        if operator in ("and", "or"):
            return f" {operator} ".join(_term(arg) for arg in args)
        if operator in ("!", "!!"):
            return f"not {_term(args[0])}" if operator == "!" else _term(args[0])
        return f"{operator}(…)"
    if isinstance(node, list):
        return "[" + ", ".join(_term(item) for item in node) + "]"
    return node if isinstance(node, str) else json.dumps(node)


def _if(args: list[Any]) -> str:
    parts = []
    for at in range(0, len(args) - 1, 2):
        parts.append(f"if {_term(args[at])} → {summarize(args[at + 1])}")
    if len(args) % 2:
        parts.append(f"else {summarize(args[-1])}")
    return ", ".join(parts)


def _fractional(args: list[Any]) -> str:
    by, weights = buckets(args)
    split = split_of(weights)
    shares = "/".join(percent_text(segment.percent) for segment in split)
    names = "/".join(segment.variant for segment in split)
    return f"fractional {shares} ({names}) by {by}"


def summarize(rule: Any) -> str:
    """A targeting rule in one line, e.g. "if beta_mode → on, else off" or
    "fractional 10/90 (on/off) by targetingKey"."""
    if rule is None or rule == {}:
        return "no targeting"
    if isinstance(rule, dict) and len(rule) == 1:
        operator, args = next(iter(rule.items()))
        if operator == "if" and isinstance(args, list):
            return _if(args)
        if operator == "fractional" and isinstance(args, list) and args:
            return _fractional(args)
    return _term(rule)


def one_line(rule: Any) -> str:
    text = summarize(rule)
    return text if len(text) <= SUMMARY_CHARS else text[: SUMMARY_CHARS - 1] + "…"
