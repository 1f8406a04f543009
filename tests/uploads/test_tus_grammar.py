"""The pure tus header grammar: parsing and formatting, directly and with Hypothesis."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reelout import urls
from reelout.uploads import tus

keys = st.text(
    alphabet=st.characters(blacklist_categories=("Z", "C"), blacklist_characters=","),
    min_size=1,
    max_size=12,
)
values = st.one_of(
    st.none(), st.binary(min_size=1, max_size=40).map(lambda b: base64.b64encode(b).decode())
)


@given(st.dictionaries(keys, values, max_size=8))
def test_metadata_round_trips_exactly(pairs: dict[str, str | None]) -> None:
    header = tus.format_metadata(list(pairs.items()))
    parsed = tus.parse_metadata(header, max_bytes=10**6)
    assert parsed == list(pairs.items())
    assert tus.format_metadata(parsed) == header


def test_metadata_decoding_and_flags() -> None:
    pairs = tus.parse_metadata("name c8WCb8WEY2U=,flag", 100)
    assert tus.decode_metadata(pairs) == {"name": "słońce", "flag": ""}


@pytest.mark.parametrize("header", ["a b c", "k dg==,k dg==", "k !!", "k dg==,,x", ",k dg=="])
def test_bad_metadata(header: str) -> None:
    with pytest.raises(tus.TusHeaderError):
        tus.parse_metadata(header, 100)


def test_metadata_size_cap_both_sides() -> None:
    header = "k " + "QUFB" * 10
    assert tus.parse_metadata(header, len(header))
    with pytest.raises(tus.TusHeaderError, match="limit"):
        tus.parse_metadata(header, len(header) - 1)


@given(st.integers(min_value=0, max_value=2**63 - 1))
def test_non_negative_integers(value: int) -> None:
    assert tus.parse_non_negative("Upload-Offset", str(value)) == value


@pytest.mark.parametrize("text", ["-1", "abc", "1.5", "", "0x10", "1e3", "+5", "9" * 20])
def test_bad_integers(text: str) -> None:
    with pytest.raises(tus.TusHeaderError) as caught:
        tus.parse_non_negative("Upload-Offset", text)
    assert caught.value.code == "INVALID_UPLOAD_OFFSET"


def test_checksum_header() -> None:
    parsed = tus.parse_checksum("sha1 " + base64.b64encode(b"x" * 20).decode())
    assert parsed == tus.Checksum("sha1", b"x" * 20)
    for bad, code in [
        ("crc99 AAAA", "UNSUPPORTED_CHECKSUM_ALGORITHM"),
        ("sha1", "INVALID_CHECKSUM"),
        ("sha1 ***", "INVALID_CHECKSUM"),
        ("sha1  AAAA", "INVALID_CHECKSUM"),
    ]:
        with pytest.raises(tus.TusHeaderError) as caught:
            tus.parse_checksum(bad)
        assert caught.value.code == code


def test_concat_header() -> None:
    a, b = "a" * 32, "b" * 32
    assert tus.parse_concat("partial") == tus.Concat(partial=True)
    final = tus.parse_concat(f"final;https://x.example/files/{a} /files/{b}")
    assert final == tus.Concat(partial=False, parts=(a, b))
    for bad in ("final;", "final", "whole", f"final;/files/{a[:-1]}"):
        with pytest.raises(tus.TusHeaderError):
            tus.parse_concat(bad)


def test_http_date_and_forwarded() -> None:
    when = datetime(2026, 11, 26, 8, 5, 3, tzinfo=UTC)
    assert tus.http_date(when) == "Thu, 26 Nov 2026 08:05:03 GMT"
    assert urls.parse_forwarded('for=1.2.3.4;proto=https;host="x.example", for=5.6.7.8') == {
        "for": "1.2.3.4",
        "proto": "https",
        "host": "x.example",
    }
    assert urls.strip_default_port("https", "x.example:443") == "x.example"
    assert urls.strip_default_port("http", "x.example:8080") == "x.example:8080"


def test_upload_ids() -> None:
    assert tus.is_upload_id("0123456789abcdef" * 2)
    for bad in ("", "../etc/passwd", "A" * 32, "0" * 31, "0" * 32 + "\x00"):
        assert not tus.is_upload_id(bad)
