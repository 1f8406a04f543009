"""`Reelout-Signature` signing and verification, directly and with Hypothesis."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reelout.webhooks.signing import parse, sign, signature, verify

SECRET = "whsec_test-secret"
BODY = b'{"id":"evt_1","type":"video.ready","created":"2026-01-01T00:00:00.000Z","data":{}}'
T = 1_767_225_600


def test_the_header_is_t_then_v1_of_hmac_sha256_over_t_dot_body() -> None:
    expected = hmac.new(SECRET.encode(), f"{T}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert sign(SECRET, T, BODY) == f"t={T},v1={expected}"


def test_a_fresh_signature_verifies() -> None:
    assert verify(SECRET, sign(SECRET, T, BODY), BODY, now=T)
    assert verify(SECRET, sign(SECRET, T, BODY), BODY, now=T + 300)
    assert verify(SECRET, sign(SECRET, T, BODY), BODY, now=T - 300)


def test_a_tampered_body_fails() -> None:
    header = sign(SECRET, T, BODY)
    assert not verify(SECRET, header, BODY.replace(b"ready", b"error"), now=T)
    assert not verify(SECRET, header, BODY + b" ", now=T)


def test_a_wrong_secret_fails() -> None:
    assert not verify("whsec_other", sign(SECRET, T, BODY), BODY, now=T)


def test_a_stale_or_future_timestamp_fails() -> None:
    header = sign(SECRET, T, BODY)
    assert not verify(SECRET, header, BODY, now=T + 301)
    assert not verify(SECRET, header, BODY, now=T - 301)
    assert verify(SECRET, header, BODY, now=T + 3600, tolerance_seconds=3600)


def test_a_changed_timestamp_fails() -> None:
    header = sign(SECRET, T, BODY).replace(f"t={T}", f"t={T + 1}")
    assert not verify(SECRET, header, BODY, now=T)


def test_any_of_several_v1_values_may_match() -> None:
    both = sign("whsec_new", T, BODY, previous=["whsec_old"])
    assert both.count("v1=") == 2
    assert verify("whsec_new", both, BODY, now=T)
    assert verify("whsec_old", both, BODY, now=T)
    assert not verify("whsec_third", both, BODY, now=T)
    bogus_first = f"t={T},v1={'0' * 64},v0=zzz,v1={signature(SECRET, T, BODY)}"
    assert verify(SECRET, bogus_first, BODY, now=T)


@pytest.mark.parametrize(
    "header",
    [
        "",
        "v1=abc",
        f"t={T}",
        f"t=abc,v1={signature(SECRET, T, BODY)}",
        f"t=-{T},v1={signature(SECRET, T, BODY)}",
        f"t={T},t={T},v1={signature(SECRET, T, BODY)}",
        f"t={T},v2={signature(SECRET, T, BODY)}",
        "garbage,,,==",
    ],
)
def test_malformed_headers_fail(header: str) -> None:
    assert not verify(SECRET, header, BODY, now=T)


def test_spaces_after_commas_are_tolerated() -> None:
    header = sign(SECRET, T, BODY).replace(",", ", ")
    assert parse(header) == (T, [signature(SECRET, T, BODY)])
    assert verify(SECRET, header, BODY, now=T)


def test_a_negative_tolerance_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="tolerance"):
        verify(SECRET, sign(SECRET, T, BODY), BODY, now=T, tolerance_seconds=-1)


secrets_ = st.text(min_size=1, max_size=60)
bodies = st.binary(max_size=300)
times = st.integers(min_value=0, max_value=2**40)


@given(secrets_, times, bodies, st.integers(min_value=-300, max_value=300))
def test_sign_then_verify_round_trips(secret: str, t: int, body: bytes, skew: int) -> None:
    assert verify(secret, sign(secret, t, body), body, now=t + skew)


@given(secrets_, times, bodies, bodies)
def test_another_body_never_verifies(secret: str, t: int, body: bytes, other: bytes) -> None:
    if other != body:
        assert not verify(secret, sign(secret, t, body), other, now=t)
