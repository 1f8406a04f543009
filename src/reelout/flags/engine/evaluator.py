"""Flag-set compilation and flag evaluation: flagd JSON in, OpenFeature resolutions out (pure).

Flag set document: flagd's `{"flags", "$evaluators", "metadata"}`. `$ref` objects are replaced
by the named `$evaluators` entry at load time (JSON parsing already makes `"$ref":"x"` and
`"$ref" : "x"` the same). Structural faults (variants, defaultVariant, state) reject the whole
document with FlagSetError naming the JSON pointer; a targeting rule that names an unknown
operator or a missing evaluator keeps the flag but makes it resolve to ERROR/PARSE_ERROR, as the
flagd testbed expects (`FlagSet.problems` lists such flags for an admin API to refuse).

Fractional generation: flag-set metadata key `"reelout.fractional"` = `"v2"` or `"v3"`
(default `"v3"` for new flag sets; v1 is not implemented). It is pinned with the set, so a
rollout that only changes weights never changes the hash; with two variants whose weights keep
one total (10/90 -> 25/75 -> ... -> 100/0), raising the treatment only moves users into it.

Prerequisites: flagd has no prerequisite keyword, so a flag reads another flag's resolved value
through a `var` path under `$flags`: `{"if": [{"var": "$flags.beta_mode"}, "on", "off"]}`.
This is plain JsonLogic, so the document stays valid against flagd-flags.schema.json, and flagd
itself (which has no `$flags` in its context) would see null and serve the default variant, a
safe degradation. The other flag is evaluated with the same context; a disabled, missing or
erroring prerequisite reads as null. Cycles between flags are rejected at load time with the
cycle named.

Reasons: no targeting gives STATIC; targeting that yields null gives DEFAULT; a variant picked
by a top-level `fractional` gives SPLIT, any other pick TARGETING_MATCH; a disabled flag gives
DISABLED with the caller's default and no variant (flagd's disabled-flag ADR). A `fractional`
without a usable targeting key returns null like any flagd operator on bad input, so the flag
serves its default variant (testbed @operator-errors); TARGETING_KEY_MISSING is left to callers
(OFREP) that require a key. A context with non-string keys is INVALID_CONTEXT.

Fast paths (`compile_rule`): static, disabled, a top-level `fractional` with literal buckets
(shorthand or keyed by a plain `var`), `if` on `in` a literal list, `if` on a `$flags.` value;
anything else runs through the JsonLogic engine. Both give identical resolutions (property-tested).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any

import cbor2
import mmh3

from reelout.flags.engine import fractional as frac
from reelout.flags.engine.jsonlogic import (
    JsonLogic,
    UnknownOperationError,
    lookup,
    strict_equal,
    truthy,
)
from reelout.flags.engine.jsonlogic import type_class as json_type
from reelout.flags.engine.semver import sem_ver

GENERATION_KEY = "reelout.fractional"
DEFAULT_GENERATION: frac.Generation = "v3"
PREREQUISITE_PREFIX = "$flags."


class Reason(StrEnum):
    """OpenFeature resolution reasons."""

    STATIC = "STATIC"
    DEFAULT = "DEFAULT"
    TARGETING_MATCH = "TARGETING_MATCH"
    SPLIT = "SPLIT"
    DISABLED = "DISABLED"
    ERROR = "ERROR"


class ErrorCode(StrEnum):
    """OpenFeature error codes."""

    FLAG_NOT_FOUND = "FLAG_NOT_FOUND"
    PARSE_ERROR = "PARSE_ERROR"
    TYPE_MISMATCH = "TYPE_MISMATCH"
    TARGETING_KEY_MISSING = "TARGETING_KEY_MISSING"
    INVALID_CONTEXT = "INVALID_CONTEXT"
    GENERAL = "GENERAL"


class FlagSetError(ValueError):
    """A flag-set document that cannot be loaded; `pointer` locates the fault."""

    def __init__(self, pointer: str, message: str) -> None:
        super().__init__(f"{pointer}: {message}")
        self.pointer = pointer
        self.message = message


EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Resolution:
    """The outcome of one evaluation, shaped like OpenFeature's resolution details."""

    value: Any
    variant: str | None
    reason: Reason
    error_code: ErrorCode | None = None
    error_message: str | None = None
    flag_metadata: Mapping[str, Any] = field(default_factory=lambda: EMPTY)


Rule = Callable[[Mapping[str, Any], "Scope"], Any]
"""A compiled targeting rule: context and scope in, raw targeting result out."""


@dataclass(frozen=True, slots=True)
class Scope:
    """What a rule may need besides the context: the flag set (prerequisites) and the time."""

    flag_set: FlagSet
    now: float


@dataclass(frozen=True, slots=True)
class Flag:
    """One compiled flag."""

    key: str
    enabled: bool
    variants: Mapping[str, Any]
    default_variant: str | None
    targeting: Mapping[str, Any] | None
    metadata: Mapping[str, Any]
    rule: Rule | None
    reason_on_match: Reason
    prerequisites: frozenset[str]
    served: Mapping[tuple[str | None, Reason], Resolution]
    problem: str | None = None


@dataclass(frozen=True, slots=True)
class FlagSet:
    """An immutable, compiled flag set."""

    flags: Mapping[str, Flag]
    metadata: Mapping[str, Any]
    generation: frac.Generation

    @property
    def problems(self) -> Mapping[str, str]:
        """Flags whose targeting cannot run, with the reason (they resolve to PARSE_ERROR)."""
        return {k: f.problem for k, f in self.flags.items() if f.problem is not None}


# --- loading -----------------------------------------------------------------------------


def parse_flag_set(document: str | Mapping[str, Any], *, fast_paths: bool = True) -> FlagSet:
    """Load a flagd flag-set document (JSON text or parsed) into a compiled FlagSet.

    `fast_paths=False` compiles every rule through the general JsonLogic interpreter (used to
    check that both paths agree).
    """
    doc = json.loads(document) if isinstance(document, str) else document
    if not isinstance(doc, Mapping) or not isinstance(doc.get("flags"), Mapping):
        raise FlagSetError("/flags", "a flag set needs a 'flags' object")
    set_metadata = _metadata(doc.get("metadata"), "/metadata")
    generation = _generation(set_metadata)
    evaluators = doc.get("$evaluators") or {}
    if not isinstance(evaluators, Mapping):
        raise FlagSetError("/$evaluators", "must be an object")
    logic = JsonLogic(_custom_operations(generation))
    flags: dict[str, Flag] = {}
    for key, raw in doc["flags"].items():
        flags[key] = _load_flag(key, raw, set_metadata, evaluators, logic, generation, fast_paths)
    _reject_cycles(flags)
    return FlagSet(MappingProxyType(flags), MappingProxyType(dict(set_metadata)), generation)


def _generation(metadata: Mapping[str, Any]) -> frac.Generation:
    value = metadata.get(GENERATION_KEY, DEFAULT_GENERATION)
    if value not in ("v2", "v3"):
        raise FlagSetError(f"/metadata/{GENERATION_KEY}", "must be 'v2' or 'v3'")
    return "v2" if value == "v2" else "v3"


def _metadata(raw: Any, pointer: str) -> Mapping[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise FlagSetError(pointer, "metadata must be an object")
    return raw


def _load_flag(
    key: str,
    raw: Any,
    set_metadata: Mapping[str, Any],
    evaluators: Mapping[str, Any],
    logic: JsonLogic,
    generation: frac.Generation,
    fast_paths: bool,
) -> Flag:
    pointer = f"/flags/{key}"
    if not isinstance(raw, Mapping):
        raise FlagSetError(pointer, "a flag must be an object")
    state = raw.get("state")
    if state not in ("ENABLED", "DISABLED"):
        raise FlagSetError(f"{pointer}/state", "must be 'ENABLED' or 'DISABLED'")
    variants = raw.get("variants")
    if not isinstance(variants, Mapping) or not variants:
        raise FlagSetError(f"{pointer}/variants", "must be a non-empty object")
    default_variant = raw.get("defaultVariant")
    if default_variant is not None and default_variant not in variants:
        raise FlagSetError(f"{pointer}/defaultVariant", f"{default_variant!r} is not a variant")
    metadata = {**set_metadata, **_metadata(raw.get("metadata"), f"{pointer}/metadata")}
    targeting = raw.get("targeting") or None
    if targeting is not None and not isinstance(targeting, Mapping):
        raise FlagSetError(f"{pointer}/targeting", "must be an object")
    problem: str | None = None
    rule: Rule | None = None
    if targeting is not None:
        try:
            targeting = resolve_refs(targeting, evaluators)
            logic.validate(targeting)
        except (KeyError, UnknownOperationError) as error:
            problem = f"{pointer}/targeting: {error.args[0]}"
        else:
            rule = compile_rule(key, targeting, logic, generation, fast_paths)
    return Flag(
        key=key,
        enabled=state == "ENABLED",
        variants=MappingProxyType(dict(variants)),
        default_variant=default_variant,
        targeting=targeting,
        metadata=MappingProxyType(metadata),
        rule=rule,
        reason_on_match=_reason_on_match(targeting),
        prerequisites=frozenset(prerequisites_of(targeting)) if problem is None else frozenset(),
        served=_served(variants, _reason_on_match(targeting), MappingProxyType(metadata)),
        problem=problem,
    )


def _reason_on_match(targeting: Any) -> Reason:
    is_split = isinstance(targeting, Mapping) and list(targeting) == ["fractional"]
    return Reason.SPLIT if is_split else Reason.TARGETING_MATCH


def resolve_refs(rule: Any, evaluators: Mapping[str, Any], seen: tuple[str, ...] = ()) -> Any:
    """Replace every `{"$ref": name}` with the named evaluator (KeyError if missing or looping)."""
    if isinstance(rule, list):
        return [resolve_refs(item, evaluators, seen) for item in rule]
    if not isinstance(rule, Mapping):
        return rule
    if list(rule) == ["$ref"]:
        name = rule["$ref"]
        if name not in evaluators:
            raise KeyError(f"$ref to unknown evaluator {name!r}")
        if name in seen:
            raise KeyError(f"$ref cycle: {' -> '.join((*seen, name))}")
        return resolve_refs(copy.deepcopy(evaluators[name]), evaluators, (*seen, name))
    return {k: resolve_refs(v, evaluators, seen) for k, v in rule.items()}


def prerequisites_of(rule: Any) -> Iterator[str]:
    """Keys of the flags a rule reads through `{"var": "$flags.<key>"}`."""
    if isinstance(rule, list):
        for item in rule:
            yield from prerequisites_of(item)
    elif isinstance(rule, Mapping):
        for operator, args in rule.items():
            path = args[0] if operator == "var" and isinstance(args, list) and args else args
            if operator == "var" and isinstance(path, str):
                if path.startswith(PREREQUISITE_PREFIX):
                    yield path[len(PREREQUISITE_PREFIX) :].split(".")[0]
            else:
                yield from prerequisites_of(args)


def _reject_cycles(flags: Mapping[str, Flag]) -> None:
    done: set[str] = set()

    def visit(key: str, path: list[str]) -> None:
        if key in path:
            cycle = [*path[path.index(key) :], key]
            raise FlagSetError(
                f"/flags/{key}/targeting", f"prerequisite cycle: {' -> '.join(cycle)}"
            )
        if key in done or key not in flags:
            return
        for other in sorted(flags[key].prerequisites):
            visit(other, [*path, key])
        done.add(key)

    for key in flags:
        visit(key, [])


# --- rules ---------------------------------------------------------------------------------


def _custom_operations(generation: frac.Generation) -> dict[str, Callable[[list[Any], Any], Any]]:
    def fractional(args: list[Any], data: Any) -> Any:
        flag_key = lookup(data, "$flagd.flagKey")
        return frac.fractional(args, str(flag_key), lookup(data, "targetingKey"), generation)

    return {
        "fractional": fractional,
        "sem_ver": lambda args, data: sem_ver(args),
        "starts_with": lambda args, data: _affix(args, str.startswith),
        "ends_with": lambda args, data: _affix(args, str.endswith),
    }


def _affix(args: list[Any], test: Callable[[str, str], bool]) -> bool | None:
    if len(args) != 2 or not isinstance(args[0], str) or not isinstance(args[1], str):
        return None
    return test(args[0], args[1])


class FlagValues(Mapping[str, Any]):
    """The lazily evaluated `$flags` view a rule sees: other flags' values for this context."""

    def __init__(self, scope: Scope, context: Mapping[str, Any]) -> None:
        self._scope, self._context = scope, context

    def __getitem__(self, key: str) -> Any:
        return prerequisite_value(self._scope, key, self._context)

    def __contains__(self, key: object) -> bool:
        return key in self._scope.flag_set.flags

    def __iter__(self) -> Iterator[str]:
        return iter(self._scope.flag_set.flags)

    def __len__(self) -> int:
        return len(self._scope.flag_set.flags)


def prerequisite_value(scope: Scope, key: str, context: Mapping[str, Any]) -> Any:
    """Another flag's resolved value for the same context; None unless a variant was served."""
    resolution = resolve(scope.flag_set, key, context, scope.now)
    return resolution.value if resolution.variant is not None else None


def general_rule(key: str, targeting: Any, logic: JsonLogic) -> Rule:
    """A rule run by the JsonLogic interpreter over the context plus `$flagd` and `$flags`."""

    reads_flags = any(True for _ in prerequisites_of(targeting))
    compiled = logic.compile(targeting)

    def run(context: Mapping[str, Any], scope: Scope) -> Any:
        data = dict(context)
        data["$flagd"] = {"flagKey": key, "timestamp": int(scope.now)}
        if reads_flags:
            data["$flags"] = FlagValues(scope, context)
        return compiled(data)

    return run


def compile_rule(
    key: str, targeting: Any, logic: JsonLogic, generation: frac.Generation, fast_paths: bool
) -> Rule:
    """The fastest rule that matches the interpreter's result for this targeting."""
    if fast_paths:
        for shape in (_fractional_rule, _membership_rule, _prerequisite_rule):
            rule = shape(key, targeting, generation)
            if rule is not None:
                return rule
    return general_rule(key, targeting, logic)


def _is_outcome(value: Any) -> bool:
    return value is None or isinstance(value, str | bool)


def _plain_var(expression: Any) -> str | None:
    """The path of a `{"var": "a.b"}` without default that reads the caller's context only."""
    if not isinstance(expression, Mapping) or list(expression) != ["var"]:
        return None
    path = expression["var"]
    path = path[0] if isinstance(path, list) and len(path) == 1 else path
    if not isinstance(path, str) or not path or path.startswith("$flag"):
        return None
    return path


def _fractional_rule(key: str, targeting: Any, generation: frac.Generation) -> Rule | None:
    """Fast path: `{"fractional": [[variant, weight], ...]}`, optionally keyed by a plain var."""
    if not isinstance(targeting, Mapping) or list(targeting) != ["fractional"]:
        return None
    args = targeting["fractional"]
    if not isinstance(args, list) or not args:
        return None
    path = _plain_var(args[0])
    buckets = args[1:] if path is not None else args
    parsed = [_literal_bucket(b) for b in buckets]
    if not buckets or any(p is None for p in parsed):
        return None
    variants = [p[0] for p in parsed if p is not None]
    weights = [p[1] for p in parsed if p is not None]
    if path is None and generation == "v3":
        return _shorthand_v3_rule(key, variants, weights)

    def run(context: Mapping[str, Any], scope: Scope) -> Any:
        if path is None:
            hash_value = frac.shorthand_hash(generation, key, context.get("targetingKey"))
        else:
            value = lookup(context, path)
            if isinstance(value, list):  # the interpreter would read it as a first bucket
                literal = [value, *([v, w] for v, w in zip(variants, weights, strict=True))]
                return frac.fractional(literal, key, context.get("targetingKey"), generation)
            if generation == "v2" and not isinstance(value, str):
                hash_value = frac.shorthand_hash(generation, key, context.get("targetingKey"))
            else:
                hash_value = frac.bucket_hash(generation, value)
        return None if hash_value is None else frac.pick(hash_value, variants, weights)

    return run


def _shorthand_v3_rule(key: str, variants: list[str | None], weights: list[int]) -> Rule | None:
    total = sum(weights)
    if total <= 0 or total > frac.MAX_WEIGHT_SUM:
        return lambda context, scope: None
    prefix = b"\x82" + frac.encode_v3(key)
    ends: list[int] = []
    for weight in weights:
        ends.append((ends[-1] if ends else 0) + weight)
    table = list(zip(ends, variants, strict=True))

    def run(context: Mapping[str, Any], scope: Scope) -> Any:
        targeting_key = context.get("targetingKey")
        if not isinstance(targeting_key, str):
            return None
        digest = mmh3.hash(prefix + cbor2.dumps(targeting_key), 0, signed=False)
        bucket = (digest * total) >> 32
        for end, variant in table:
            if bucket < end:
                return variant
        return None

    return run


def _literal_bucket(bucket: Any) -> tuple[str | None, int] | None:
    if not isinstance(bucket, list) or not bucket or len(bucket) > 2:
        return None
    variant = bucket[0]
    if not isinstance(variant, str):
        return None
    weight = frac.weight_of(bucket[1]) if len(bucket) == 2 else 1
    return None if weight is None else (variant, weight)


Branch = Callable[[Mapping[str, Any], "Scope"], Any]


def _branch(key: str, branch: Any, generation: frac.Generation) -> Branch | None:
    """An `if` outcome as a fast rule: a literal variant name (or null), or a fractional split
    (e.g. "country in [DE, FR] → 25 % rollout, else off"); None when it needs the interpreter."""
    if _is_outcome(branch):
        return lambda context, scope: branch
    return _fractional_rule(key, branch, generation)


def _branches(
    key: str, targeting: Any, generation: frac.Generation
) -> tuple[Any, Branch, Branch] | None:
    """(condition, then, else) of an `if` whose outcomes compile to fast rules."""
    if not isinstance(targeting, Mapping) or list(targeting) != ["if"]:
        return None
    args = targeting["if"]
    if not isinstance(args, list) or len(args) not in (2, 3):
        return None
    then = _branch(key, args[1], generation)
    otherwise = _branch(key, args[2] if len(args) == 3 else None, generation)
    if then is None or otherwise is None:
        return None
    return args[0], then, otherwise


def _membership_rule(key: str, targeting: Any, generation: frac.Generation) -> Rule | None:
    """Fast path: `{"if": [{"in": [{"var": path}, [literals]]}, then, else]}`."""
    branches = _branches(key, targeting, generation)
    if branches is None:
        return None
    condition, then, otherwise = branches
    if not isinstance(condition, Mapping) or list(condition) != ["in"]:
        return None
    args = condition["in"]
    if not isinstance(args, list) or len(args) != 2 or not isinstance(args[1], list):
        return None
    path = _plain_var(args[0])
    members = args[1]
    if path is None or not all(isinstance(m, str | int | float | bool) for m in members):
        return None
    allowed = frozenset((json_type(m), m) for m in members)

    def run(context: Mapping[str, Any], scope: Scope) -> Any:
        value = lookup(context, path)
        try:
            hit = (json_type(value), value) in allowed
        except TypeError:  # an unhashable list or object is in no list of scalars
            hit = False
        return then(context, scope) if hit else otherwise(context, scope)

    return run


def _prerequisite_rule(key: str, targeting: Any, generation: frac.Generation) -> Rule | None:
    """Fast path: `{"if": [{"var": "$flags.K"} or {"===": [that, literal]}, then, else]}`."""
    branches = _branches(key, targeting, generation)
    if branches is None:
        return None
    condition, then, otherwise = branches
    expected: Any = _NO_LITERAL
    if isinstance(condition, Mapping) and list(condition) == ["==="]:
        args = condition["==="]
        if not isinstance(args, list) or len(args) != 2 or isinstance(args[1], dict | list):
            return None
        condition, expected = args
    if not isinstance(condition, Mapping) or list(condition) != ["var"]:
        return None
    path = condition["var"]
    if not isinstance(path, str) or not path.startswith(PREREQUISITE_PREFIX):
        return None
    other = path[len(PREREQUISITE_PREFIX) :]
    if "." in other:
        return None

    def run(context: Mapping[str, Any], scope: Scope) -> Any:
        value = prerequisite_value(scope, other, context)
        hit = truthy(value) if expected is _NO_LITERAL else strict_equal(value, expected)
        return then(context, scope) if hit else otherwise(context, scope)

    return run


_NO_LITERAL = object()


# --- evaluation ----------------------------------------------------------------------------


def evaluate(
    flag_set: FlagSet,
    key: str,
    context: Mapping[str, Any],
    *,
    default: Any,
    expected_type: type,
    now: float,
) -> Resolution:
    """Resolve flag `key` for `context` at Unix time `now`, checking the value's type.

    `expected_type` is one of bool, str, int, float, dict (an object; lists also pass).
    """
    if not isinstance(context, Mapping) or not all(isinstance(k, str) for k in context):
        return _error(ErrorCode.INVALID_CONTEXT, "context must map strings to values", default)
    resolution = resolve(flag_set, key, context, now)
    if resolution.variant is None:
        return _with_value(resolution, default)
    value = resolution.value
    if not fits(value, expected_type):
        message = f"flag {key!r} is {json_type(value)}, expected {expected_type.__name__}"
        return _error(ErrorCode.TYPE_MISMATCH, message, default, resolution.flag_metadata)
    if expected_type is float and not isinstance(value, float):
        return _with_value(resolution, float(value))
    return resolution


def fits(value: Any, expected_type: type) -> bool:
    """Whether a variant value may be served as `expected_type`."""
    if expected_type is bool:
        return isinstance(value, bool)
    if expected_type is str:
        return isinstance(value, str)
    if expected_type is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if expected_type is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, dict | list)


def resolve(flag_set: FlagSet, key: str, context: Mapping[str, Any], now: float) -> Resolution:
    """Resolve a flag without a type check; `variant` is None when the caller's default applies."""
    flag = flag_set.flags.get(key)
    if flag is None:
        return _error(ErrorCode.FLAG_NOT_FOUND, f"flag {key!r} not found", None)
    if not flag.enabled:
        return Resolution(None, None, Reason.DISABLED, flag_metadata=flag.metadata)
    if flag.problem is not None:
        return _error(ErrorCode.PARSE_ERROR, flag.problem, None, flag.metadata)
    if flag.rule is None:
        return _serve(flag, flag.default_variant, Reason.STATIC)
    outcome = flag.rule(context, Scope(flag_set, now))
    if outcome is None:
        return _serve(flag, flag.default_variant, Reason.DEFAULT)
    if isinstance(outcome, bool):
        outcome = "true" if outcome else "false"
    if not isinstance(outcome, str) or outcome not in flag.variants:
        message = f"targeting of {key!r} returned {outcome!r}, which is not a variant"
        return _error(ErrorCode.GENERAL, message, None, flag.metadata)
    return _serve(flag, outcome, flag.reason_on_match)


def _serve(flag: Flag, variant: str | None, reason: Reason) -> Resolution:
    return flag.served[(variant, reason) if variant is not None else (None, Reason.DEFAULT)]


def _served(
    variants: Mapping[str, Any], reason_on_match: Reason, metadata: Mapping[str, Any]
) -> Mapping[tuple[str | None, Reason], Resolution]:
    """Every successful resolution a flag can give, built once (values are shared, read-only)."""
    default = Resolution(None, None, Reason.DEFAULT, flag_metadata=metadata)
    served: dict[tuple[str | None, Reason], Resolution] = {(None, Reason.DEFAULT): default}
    for variant, value in variants.items():
        for reason in (Reason.STATIC, Reason.DEFAULT, reason_on_match):
            served[(variant, reason)] = Resolution(value, variant, reason, flag_metadata=metadata)
    return MappingProxyType(served)


def _with_value(resolution: Resolution, value: Any) -> Resolution:
    return Resolution(
        value,
        resolution.variant,
        resolution.reason,
        resolution.error_code,
        resolution.error_message,
        resolution.flag_metadata,
    )


def _error(
    code: ErrorCode, message: str, default: Any, metadata: Mapping[str, Any] = EMPTY
) -> Resolution:
    return Resolution(default, None, Reason.ERROR, code, message, metadata)
