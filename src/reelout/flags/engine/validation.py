"""Flag-set validation: the flagd JSON schema (shipped in schema/) plus the checks it cannot express.

Every fault is reported with the JSON Pointer (RFC 6901) of where it is, all of them at once."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft7Validator
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource

from reelout.errors import BadRequest
from reelout.flags.engine.evaluator import FlagSetError, parse_flag_set

SCHEMA_FILES = ("flags.json", "targeting.json")


@dataclass(frozen=True)
class Fault:
    pointer: str
    message: str


class InvalidFlagSet(BadRequest):
    code = "INVALID_FLAG_SET"

    def __init__(self, faults: list[Fault]) -> None:
        first = faults[0]
        more = f" (and {len(faults) - 1} more)" if len(faults) > 1 else ""
        super().__init__(
            f"the flag set is not valid: {first.pointer or '/'}: {first.message}{more}",
            details={"errors": [{"pointer": f.pointer, "message": f.message} for f in faults]},
        )


def schema_text(name: str) -> str:
    """One of the shipped flagd schema files, as published."""
    return resources.files("reelout.flags.engine").joinpath("schema", name).read_text("utf-8")


@cache
def _validator() -> Draft7Validator:
    schemas = [json.loads(schema_text(name)) for name in SCHEMA_FILES]
    registry: Registry[Any] = Registry().with_resources(
        (schema["$id"], Resource.from_contents(schema)) for schema in schemas
    )
    return Draft7Validator({"$ref": schemas[0]["$id"]}, registry=registry)


def pointer(parts: list[str | int] | tuple[str | int, ...]) -> str:
    """The JSON Pointer of a path of keys and indexes."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def _variant_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return "string" if isinstance(value, str) else "object" if isinstance(value, dict) else "other"


def _mixed_variants(flag: Any) -> Fault | None:
    variants = flag.get("variants") if isinstance(flag, dict) else None
    if not isinstance(variants, dict) or not variants:
        return None
    kinds = {name: _variant_type(value) for name, value in variants.items()}
    first_name, first_kind = next(iter(kinds.items()))
    for name, kind in kinds.items():
        if kind != first_kind:
            return Fault(
                pointer(["variants", name]),
                f"every variant of a flag has one type: {first_name!r} is {first_kind}, "
                f"{name!r} is {kind}",
            )
    return None


def _leaves(error: ValidationError) -> Iterator[ValidationError]:
    if not error.context:
        yield error
    for sub in error.context or ():
        yield from _leaves(sub)


def _likeliest(error: ValidationError) -> ValidationError:
    """Of the alternatives an anyOf rejected, the fault most of them share, the deepest first."""
    leaves = list(_leaves(error))
    seen: Counter[tuple[str, str]] = Counter(
        (pointer(list(leaf.absolute_path)), leaf.message) for leaf in leaves
    )

    def rank(item: tuple[int, ValidationError]) -> tuple[int, int, int]:
        order, leaf = item
        where = pointer(list(leaf.absolute_path))
        return (-seen[(where, leaf.message)], -len(leaf.absolute_path), order)

    return min(enumerate(leaves), key=rank)[1]


def _schema_fault(error: ValidationError, document: Any) -> Fault:
    path = list(error.absolute_path)
    if len(path) == 2 and path[0] == "flags" and error.validator == "anyOf":
        mixed = _mixed_variants(document["flags"][path[1]])
        if mixed is not None:
            return Fault(pointer(path) + mixed.pointer, mixed.message)
    best = _likeliest(error)
    where = list(best.absolute_path)
    if best.validator == "required" and isinstance(best.validator_value, list):
        instance = best.instance if isinstance(best.instance, dict) else {}
        missing = [name for name in best.validator_value if name not in instance]
        if missing:
            where.append(missing[0])
    return Fault(pointer(where), best.message)


def _refs(node: Any, path: list[str | int]) -> Iterator[tuple[list[str | int], Any]]:
    """Every `$ref` inside a targeting rule, with its path."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield [*path, key], value
            else:
                yield from _refs(value, [*path, key])
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _refs(value, [*path, index])


def _flag_faults(key: str, flag: dict[str, Any], evaluators: dict[str, Any]) -> Iterator[Fault]:
    base: list[str | int] = ["flags", key]
    default = flag.get("defaultVariant")
    if isinstance(default, str) and default not in flag.get("variants", {}):
        known = ", ".join(repr(name) for name in flag.get("variants", {}))
        yield Fault(
            pointer([*base, "defaultVariant"]),
            f"defaultVariant {default!r} is not one of the flag's variants ({known})",
        )
    for path, name in _refs(flag.get("targeting", {}), [*base, "targeting"]):
        if name not in evaluators:
            yield Fault(pointer(path), f"$ref {name!r} names no entry of $evaluators")


def _semantic_faults(document: dict[str, Any], skip: set[str]) -> Iterator[Fault]:
    evaluators = document.get("$evaluators", {})
    for name, rule in evaluators.items():
        for path, _ in _refs(rule, ["$evaluators", name]):
            yield Fault(pointer(path), "a shared evaluator cannot $ref another one")
    for key, flag in document["flags"].items():
        if key not in skip:
            yield from _flag_faults(key, flag, evaluators)


def faults(document: Any) -> list[Fault]:
    """Everything wrong with a parsed flag set (empty: it is valid)."""
    errors = list(_validator().iter_errors(document))
    found = [_schema_fault(error, document) for error in errors]
    if not isinstance(document, dict) or not isinstance(document.get("flags"), dict):
        return found
    if not isinstance(document.get("$evaluators", {}), dict):
        return found
    broken = {str(e.absolute_path[1]) for e in errors if list(e.absolute_path)[:1] == ["flags"]}
    broken |= {k for k in document["flags"] if not isinstance(document["flags"][k], dict)}
    if any(list(e.absolute_path)[:1] == ["$evaluators"] for e in errors):
        return found
    found.extend(_semantic_faults(document, broken))
    return sorted(found, key=lambda fault: fault.pointer)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"the member {key!r} appears twice in one object")
        out[key] = value
    return out


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse(text: str | bytes) -> Any:
    """Strict JSON: no duplicate members, no NaN/Infinity; a 400 INVALID_JSON otherwise."""
    try:
        raw = text.decode("utf-8") if isinstance(text, bytes) else text
        return json.loads(raw, object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}", code="INVALID_JSON") from None
    except RecursionError:  # a body no route's depth limit saw first (a form field, a file)
        raise BadRequest("the JSON is nested too deeply to read", code="JSON_TOO_DEEP") from None


def engine_faults(document: dict[str, Any]) -> list[Fault]:
    """What the evaluation engine refuses in a schema-valid set: prerequisite cycles, unknown
    operators, rules that cannot run (flagd would answer PARSE_ERROR for them at run time)."""
    try:
        compiled = parse_flag_set(document)
    except FlagSetError as exc:
        return [Fault(exc.pointer, exc.message)]
    return [
        Fault(pointer(["flags", key, "targeting"]), problem)
        for key, problem in sorted(compiled.problems.items())
    ]


def check(document: Any) -> dict[str, Any]:
    """The document, if it is a valid flag set; 400 INVALID_FLAG_SET listing every fault."""
    found = faults(document)
    if not found:
        assert isinstance(document, dict)
        found = engine_faults(document)
    if found:
        raise InvalidFlagSet(found)
    assert isinstance(document, dict)
    return document
