"""How deep a JSON text nests, without parsing it (pure): so no parser ever recurses too far.

Hand-written: the standard library's parser is the thing being protected, and no maintained
library answers "deeper than N?" on raw bytes. Strings are dropped with one regular expression
(brackets inside them do not count) and the brackets left are summed; a text with fewer brackets
than the limit is not scanned at all.
"""

from __future__ import annotations

import re
from itertools import accumulate

_STRING = re.compile(rb'"(?:[^"\\]+|\\.)*"', re.DOTALL)
_BRACKETS = b"[]{}"
_NOT_BRACKETS = bytes(b for b in range(256) if b not in _BRACKETS)
_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


def too_deep(raw: bytes, max_depth: int) -> bool:
    """Whether JSON text nests arrays and objects more than `max_depth` levels (pure)."""
    if raw.count(b"[") + raw.count(b"{") <= max_depth:
        return False
    skeleton = _STRING.sub(b"", raw).translate(None, _NOT_BRACKETS)
    return max(accumulate(_STEP[b] for b in skeleton), default=0) > max_depth


def too_deep_message(max_depth: int) -> str:
    """What a person is told about a body refused with `JSON_TOO_DEEP`."""
    return (
        f"the JSON body nests arrays and objects more than {max_depth} levels deep "
        "(REELOUT_JSON_MAX_DEPTH); send a flatter document"
    )
