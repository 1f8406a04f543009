"""flagd `fractional` bucketing: MurmurHash3 x86_32 (seed 0), v2 string and v3 CBOR inputs (pure)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import cbor2
import mmh3

Generation = Literal["v2", "v3"]
MAX_WEIGHT_SUM = 2**31 - 1
_INT_MIN, _UINT_MAX = -(2**63), 2**64 - 1


def normalize(value: Any) -> Any:
    """Normalize a bucketing value for v3: integral floats in [-2^63, 2^64-1] become ints."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer() and _INT_MIN <= value <= _UINT_MAX:
            return int(value)
        return value
    if isinstance(value, int):
        return value if _INT_MIN <= value <= _UINT_MAX else float(value)
    if isinstance(value, Mapping):
        return {str(k): normalize(v) for k, v in value.items()}
    if isinstance(value, Sequence):
        return [normalize(v) for v in value]
    return str(value)


def encode_v3(value: Any) -> bytes:
    """Deterministic CBOR (RFC 8949 4.2.1: shortest floats, sorted string keys) of a value.

    cbor2's `canonical=True` sorts map keys length-first (RFC 7049 3.9); for the string keys
    that JSON allows this is the same order as RFC 8949's bytewise order, as the ADR notes.
    """
    return cbor2.dumps(normalize(value), canonical=True)


def hash_v2(value: str) -> int:
    """Unsigned MurmurHash3 x86_32 (seed 0) of a string's UTF-8 bytes."""
    return mmh3.hash(value.encode("utf-8"), 0, signed=False)


def hash_v3(value: Any) -> int:
    """Unsigned MurmurHash3 x86_32 (seed 0) of the value's deterministic CBOR encoding."""
    return mmh3.hash(encode_v3(value), 0, signed=False)


def bucket_of(hash_value: int, total_weight: int) -> int:
    """High-precision projection of a uint32 hash onto [0, total_weight)."""
    return (hash_value * total_weight) >> 32


def pick(hash_value: int, variants: Sequence[Any], weights: Sequence[int]) -> Any:
    """The variant whose cumulative weight range holds the hash's bucket (None if all weights 0)."""
    total = sum(weights)
    if total <= 0 or total > MAX_WEIGHT_SUM:
        return None
    bucket = bucket_of(hash_value, total)
    end = 0
    for variant, weight in zip(variants, weights, strict=True):
        end += weight
        if bucket < end:
            return variant
    return None


def weight_of(raw: Any) -> int | None:
    """A bucket weight: numbers truncate to int, negatives clamp to 0, anything else is invalid."""
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
        return None
    return max(0, int(raw))


def bucket_hash(generation: Generation, value: Any) -> int | None:
    """Hash an explicit bucketing value; None when the generation cannot bucket on it."""
    if value is None or isinstance(value, list):
        return None
    if generation == "v3":
        return hash_v3(value)
    return hash_v2(value) if isinstance(value, str) else None


def shorthand_hash(generation: Generation, flag_key: str, targeting_key: Any) -> int | None:
    """Hash for the shorthand form: v3 hashes [flagKey, targetingKey], v2 their concatenation."""
    if not isinstance(targeting_key, str):
        return None
    if generation == "v3":  # CBOR array of two (0x82), then each string: same as hash_v3([...])
        encoded = b"\x82" + cbor2.dumps(flag_key) + cbor2.dumps(targeting_key)
        return mmh3.hash(encoded, 0, signed=False)
    return hash_v2(flag_key + targeting_key)


def fractional(args: list[Any], flag_key: str, targeting_key: Any, generation: Generation) -> Any:
    """flagd `fractional` over already-evaluated arguments; None on any bad input."""
    if not args:
        return None
    if isinstance(args[0], list):
        hash_value, buckets = shorthand_hash(generation, flag_key, targeting_key), args
    elif generation == "v2" and not isinstance(args[0], str):
        hash_value, buckets = shorthand_hash(generation, flag_key, targeting_key), args[1:]
    else:
        hash_value, buckets = bucket_hash(generation, args[0]), args[1:]
    if hash_value is None or not buckets:
        return None
    variants: list[Any] = []
    weights: list[int] = []
    for bucket in buckets:
        if not isinstance(bucket, list) or not bucket:
            return None
        weight = weight_of(bucket[1]) if len(bucket) > 1 else 1
        if weight is None:
            return None
        variants.append(bucket[0])
        weights.append(weight)
    return pick(hash_value, variants, weights)


def splits(rule: Any) -> list[list[Any]]:
    """Every `fractional`'s argument list in a targeting rule (the lists themselves)."""
    if isinstance(rule, list):
        return [found for item in rule for found in splits(item)]
    if not isinstance(rule, dict):
        return []
    found: list[list[Any]] = []
    for operator, args in rule.items():
        if operator == "fractional" and isinstance(args, list) and args:
            found.append(args)
        found.extend(splits(args))
    return found
