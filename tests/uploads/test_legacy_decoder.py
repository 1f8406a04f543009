"""The streaming decoder of the legacy base64 JSON body, on any chunking of any body."""

from __future__ import annotations

import base64
import itertools
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reelout.uploads.legacy import LegacyBodyError, LegacyDecoder

MAX_DEPTH = 64


def decode(body: bytes, cuts: list[int]) -> tuple[bytes, dict[str, object]]:
    out = bytearray()
    decoder = LegacyDecoder(out.extend, MAX_DEPTH)
    points = sorted({c % (len(body) + 1) for c in cuts} | {0, len(body)})
    for start, end in itertools.pairwise(points):
        decoder.feed(body[start:end])
    return bytes(out), decoder.finish()


@settings(max_examples=200, deadline=None)
@given(
    data=st.binary(max_size=3000),
    cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=20),
    data_url=st.booleans(),
    escape_slashes=st.booleans(),
    filename=st.text(max_size=30),
)
def test_any_chunking_decodes_exactly(
    data: bytes, cuts: list[int], data_url: bool, escape_slashes: bool, filename: str
) -> None:
    value = ("data:video/mp4;base64," if data_url else "") + base64.b64encode(data).decode()
    text = json.dumps({"filename": filename, "file_base64": value, "n": 1})
    if escape_slashes:
        text = text.replace("/", "\\/")
    decoded, rest = decode(text.encode(), cuts)
    assert decoded == data
    assert rest == {"filename": filename, "n": 1}


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b'{"file_base64": "QUJD', "INVALID_LEGACY_BODY"),
        (b'{"file_base64": "QUJ"}', "INVALID_BASE64"),
        (b'{"file_base64": "Q!JD"}', "INVALID_BASE64"),
        (b'{"other": 1}', "INVALID_LEGACY_BODY"),
        (b'{"file_base64": "QUJD", }', "INVALID_JSON"),
        (b'["file_base64"]', "INVALID_LEGACY_BODY"),
    ],
)
def test_broken_bodies_are_refused_never_truncated(body: bytes, code: str) -> None:
    with pytest.raises(LegacyBodyError) as caught:
        decode(body, [3, 9])
    assert caught.value.code == code


@pytest.mark.parametrize(("depth", "refused"), [(MAX_DEPTH - 1, False), (MAX_DEPTH, True)])
def test_the_fields_after_the_video_nest_at_most_the_limit(depth: int, refused: bool) -> None:
    """The document itself is one level; `depth` more below it reach MAX_DEPTH + 1 when refused."""
    body = b'{"file_base64": "QUJD", "x": ' + b"[" * depth + b"]" * depth + b"}"
    if not refused:
        assert decode(body, [7, 30]) == (b"ABC", {"x": json.loads(b"[" * depth + b"]" * depth)})
        return
    with pytest.raises(LegacyBodyError) as refusal:
        decode(body, [7, 30])
    assert refusal.value.code == "JSON_TOO_DEEP"
