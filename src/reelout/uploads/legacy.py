"""Incremental decoder for the legacy `{"file_base64": "..."}` JSON body (pure, I/O-free).

Hand-written because JSON streaming libraries (ijson) hand over a string value whole, and this
value is the whole video: here the base64 text is decoded as it arrives, so memory stays
bounded by one chunk, and the small rest of the document is parsed with `json` at the end.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable
from typing import Any

from reelout.jsondepth import too_deep, too_deep_message

FIELD = "file_base64"
_KEY = re.compile(rb'"file_base64"\s*:\s*"')
_DATA_URL = re.compile(rb"^data:[^,;]*(;[^,]*)?;base64,")
_ESCAPES = {b"\\/": b"/", b"\\n": b"", b"\\r": b"", b"\\t": b""}
MAX_TEXT = 64 * 1024


class LegacyBodyError(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class LegacyDecoder:
    """Feed body chunks; decoded video bytes go to `sink`; `finish()` returns the other fields."""

    def __init__(self, sink: Callable[[bytes], None], max_depth: int) -> None:
        self._sink = sink
        self._max_depth = max_depth
        self._before = bytearray()
        self._after = bytearray()
        self._carry = b""
        self._phase = "before"
        self._started = False
        self.decoded = 0

    def feed(self, chunk: bytes) -> None:
        if self._phase == "before":
            self._before += chunk
            match = _KEY.search(self._before)
            if match is None:
                self._check_text(self._before)
                return
            rest = bytes(self._before[match.end() :])
            del self._before[match.end() :]  # keep the opening quote
            self._phase = "value"
            chunk = rest
        if self._phase == "value":
            chunk = self._feed_value(chunk)
        if self._phase == "after":
            self._after += chunk
            self._check_text(self._after)

    def _feed_value(self, chunk: bytes) -> bytes:
        end = _closing_quote(chunk)
        value, rest = (chunk, b"") if end < 0 else (chunk[:end], chunk[end:])
        self._decode(self._carry + value, final=end >= 0)
        if end >= 0:
            self._phase = "after"
        return rest

    def _decode(self, text: bytes, final: bool) -> None:
        if text.endswith(b"\\") and not final:
            text, self._carry = text[:-1], b"\\"
        else:
            self._carry = b""
        for escape, plain in _ESCAPES.items():
            text = text.replace(escape, plain)
        if not self._started:
            if len(text) < 256 and not final:
                self._carry = text + self._carry  # wait: a data-URL prefix may be split
                return
            text = _DATA_URL.sub(b"", text, count=1)
            self._started = True
        usable = len(text) if final else len(text) - len(text) % 4
        block, self._carry = text[:usable], text[usable:] + self._carry
        if final and len(block) % 4:
            raise LegacyBodyError(
                "INVALID_BASE64", "file_base64 is cut short: its length is not a multiple of 4"
            )
        try:
            data = base64.b64decode(block, validate=True)
        except binascii.Error:
            raise LegacyBodyError("INVALID_BASE64", "file_base64 is not valid base64") from None
        self.decoded += len(data)
        if data:
            self._sink(data)

    @staticmethod
    def _check_text(buffer: bytearray) -> None:
        if len(buffer) > MAX_TEXT:
            raise LegacyBodyError(
                "INVALID_LEGACY_BODY", f"the JSON body has no {FIELD!r} string field near its start"
            )

    def finish(self) -> dict[str, Any]:
        if self._phase != "after":
            raise LegacyBodyError(
                "INVALID_LEGACY_BODY", f"the JSON body has no complete {FIELD!r} string field"
            )
        text = bytes(self._before) + bytes(self._after)
        if too_deep(text, self._max_depth):
            raise LegacyBodyError("JSON_TOO_DEEP", too_deep_message(self._max_depth))
        try:
            document = json.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:
            raise LegacyBodyError("INVALID_JSON", f"the body is not valid JSON: {exc}") from None
        if not isinstance(document, dict):
            raise LegacyBodyError("INVALID_JSON", "the body must be a JSON object")
        document.pop(FIELD, None)
        return document


def _closing_quote(chunk: bytes) -> int:
    """Index of the first unescaped quote (base64 never holds one; escapes are only `\\/` etc.)."""
    start = 0
    while (index := chunk.find(b'"', start)) >= 0:
        if index == 0 or chunk[index - 1 : index] != b"\\":
            return index
        start = index + 1
    return -1
