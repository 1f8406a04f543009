"""Semantic-version parsing and comparison for flagd's `sem_ver` operator (pure)."""

from __future__ import annotations

from typing import Any, NamedTuple


class Version(NamedTuple):
    """A parsed version: numeric core plus pre-release identifiers (build metadata dropped)."""

    core: tuple[int, int, int]
    prerelease: tuple[int | str, ...]


def parse_version(raw: Any) -> Version | None:
    """Parse `raw` leniently (v-prefix, partial `1`/`1.2`, numbers); None when it is no version."""
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        return None
    text = str(raw).strip()
    if text[:1] in ("v", "V"):
        text = text[1:]
    text = text.split("+", 1)[0]
    core_text, _, pre_text = text.partition("-")
    parts = core_text.split(".")
    if not 1 <= len(parts) <= 3 or not all(p.isdigit() for p in parts):
        return None
    numbers = [int(p) for p in parts] + [0] * (3 - len(parts))
    prerelease = tuple(_identifier(i) for i in pre_text.split(".")) if pre_text else ()
    if "" in prerelease:
        return None
    return Version((numbers[0], numbers[1], numbers[2]), prerelease)


def _identifier(part: str) -> int | str:
    return int(part) if part.isdigit() else part


def _order_key(version: Version) -> tuple[Any, ...]:
    """Sort key: a release sorts after its pre-releases; numeric identifiers before alphanumeric."""
    if not version.prerelease:
        return (version.core, 1, ())
    ids = tuple((0, i, "") if isinstance(i, int) else (1, 0, i) for i in version.prerelease)
    return (version.core, 0, ids)


def compare(left: Version, right: Version) -> int:
    """-1, 0 or 1 as `left` sorts before, with or after `right` (semver 2.0.0 precedence)."""
    a, b = _order_key(left), _order_key(right)
    return (a > b) - (a < b)


def sem_ver(args: list[Any]) -> bool | None:
    """flagd `sem_ver`: [version, operator, target] -> bool, or None on any bad input."""
    if len(args) != 3 or not isinstance(args[1], str):
        return None
    left, right = parse_version(args[0]), parse_version(args[2])
    if left is None or right is None:
        return None
    operator = args[1]
    if operator == "^":
        return left.core[0] == right.core[0]
    if operator == "~":
        return left.core[:2] == right.core[:2]
    order = compare(left, right)
    checks = {
        "=": order == 0,
        "!=": order != 0,
        "<": order < 0,
        "<=": order <= 0,
        ">": order > 0,
        ">=": order >= 0,
    }
    return checks.get(operator)
