"""The pure rules for serving objects: which bytes a Range asks for, redirect lifetimes, URLs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reelout.media import delivery
from reelout.media.delivery import UNSATISFIABLE, ByteRange


@pytest.mark.parametrize(
    ("header", "size", "expected"),
    [
        (None, 10, None),
        ("bytes=0-4", 10, ByteRange(0, 4, 10)),
        ("bytes=5-", 10, ByteRange(5, 9, 10)),
        ("bytes=8-100", 10, ByteRange(8, 9, 10)),
        ("bytes=-3", 10, ByteRange(7, 9, 10)),
        ("bytes=-30", 10, ByteRange(0, 9, 10)),
        ("bytes=10-", 10, UNSATISFIABLE),
        ("bytes=-0", 10, UNSATISFIABLE),
        ("bytes=0-", 0, UNSATISFIABLE),
        ("bytes=4-2", 10, None),  # not a valid range: ignored, the whole file
        ("bytes=0-1,4-5", 10, None),  # several ranges: we send the whole file
        ("items=0-1", 10, None),
        ("bytes=a-b", 10, None),
        ("bytes=-", 10, None),
    ],
)
def test_byte_ranges(header: str | None, size: int, expected: object) -> None:
    assert delivery.byte_range(header, size) == expected


@given(st.integers(0, 10**6), st.integers(0, 10**6), st.integers(0, 10**6))
def test_a_satisfiable_range_lies_inside_the_file(first: int, last: int, size: int) -> None:
    found = delivery.byte_range(f"bytes={first}-{last}", size)
    if isinstance(found, ByteRange):
        assert 0 <= found.first <= found.last < size
        assert found.length == min(last, size - 1) - first + 1
    else:
        assert found == (UNSATISFIABLE if first >= size and last >= first else None)


def test_a_redirect_never_outlives_the_token() -> None:
    assert delivery.redirect_lifetime(600, None) == 600
    assert delivery.redirect_lifetime(600, 120) == 120
    assert delivery.redirect_lifetime(600, 0) == 1
    assert delivery.public_url("https://cdn.example/", "/site/media/a") == (
        "https://cdn.example/site/media/a"
    )
    assert delivery.range_applies(None, '"a"') and delivery.range_applies('"a"', '"a"')
    assert not delivery.range_applies('"b"', '"a"')
