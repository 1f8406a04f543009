"""Feature flags: flagd-compatible flag sets and their pure evaluation engine."""

from reelout.flags.evaluator import (
    ErrorCode,
    FlagSet,
    FlagSetError,
    Reason,
    Resolution,
    evaluate,
    parse_flag_set,
)

__all__ = [
    "ErrorCode",
    "FlagSet",
    "FlagSetError",
    "Reason",
    "Resolution",
    "evaluate",
    "parse_flag_set",
]
