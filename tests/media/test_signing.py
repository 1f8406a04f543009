"""Signed playback tokens: valid only for their video, until their expiry, and shared by every
viewer within one 5-minute bucket so caches keep working."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from reelout.media import signing
from reelout.media.signing import BUCKET_SECONDS, TokenProblem

KEY = b"k" * 32
NOW = 1_800_000_000


def test_a_token_opens_its_video_until_it_expires() -> None:
    token, expires = signing.issue(KEY, "vid1", NOW, 3600)
    assert expires >= NOW + 3600 and expires % BUCKET_SECONDS == 0
    assert signing.check(KEY, "vid1", token, NOW) == signing.Checked(None, expires - NOW)
    assert signing.check(KEY, "vid1", token, expires).problem is TokenProblem.expired
    assert signing.check(KEY, "vid2", token, NOW).problem is TokenProblem.forged
    assert signing.check(b"x" * 32, "vid1", token, NOW).problem is TokenProblem.forged


def test_tampering_and_nonsense_are_refused() -> None:
    token, expires = signing.issue(KEY, "vid1", NOW, 3600)
    signature = token.split("-", 1)[1]
    longer = f"{expires + BUCKET_SECONDS}-{signature}"
    assert signing.check(KEY, "vid1", longer, NOW).problem is TokenProblem.forged
    for bad in ("", None, "abc", "123", f"x-{signature}", f"{expires}-{signature[:-1]}"):
        problem = signing.check(KEY, "vid1", bad, NOW).problem
        assert problem in (TokenProblem.missing, TokenProblem.malformed), bad


@given(st.integers(min_value=1, max_value=BUCKET_SECONDS))
def test_viewers_within_one_bucket_share_a_token(offset: int) -> None:
    start = NOW - NOW % BUCKET_SECONDS  # a bucket boundary: (start, start + bucket] is one bucket
    assert signing.issue(KEY, "v", start + offset, 3600) == signing.issue(KEY, "v", start + 1, 3600)
    assert signing.issue(KEY, "v", start, 3600) != signing.issue(KEY, "v", start + 1, 3600)


@given(st.integers(min_value=0, max_value=10**10), st.integers(min_value=60, max_value=10**6))
def test_a_token_never_lasts_less_than_asked_nor_a_bucket_more(now: int, ttl: int) -> None:
    _, expires = signing.issue(KEY, "v", now, ttl)
    assert now + ttl <= expires < now + ttl + BUCKET_SECONDS
