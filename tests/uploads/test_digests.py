"""Running digests carry a SHA-256 across PATCHes and refuse to guess after a gap."""

from __future__ import annotations

import hashlib

from reelout.uploads.digests import RunningDigests


def test_digest_carries_across_patches() -> None:
    digests = RunningDigests()
    hasher = digests.resume("u", 0)
    hasher.update(b"hello ")
    digests.keep("u", 6, hasher)
    again = digests.resume("u", 6)
    assert again is not None
    again.update(b"world")
    digests.keep("u", 11, again)
    assert digests.take("u", 11) == hashlib.sha256(b"hello world").hexdigest()
    assert digests.take("u", 11) is None, "taken once"


def test_a_gap_or_a_wrong_length_gives_no_digest() -> None:
    digests = RunningDigests()
    hasher = digests.resume("u", 0)
    hasher.update(b"abc")
    digests.keep("u", 3, hasher)
    assert digests.resume("u", 5) is None, "offset 5 was not hashed here: re-read at the end"
    digests.keep("v", 3, hashlib.sha256(b"abc"))
    assert digests.take("v", 4) is None


def test_capacity_evicts_the_oldest() -> None:
    digests = RunningDigests(capacity=2)
    for name in ("a", "b", "c"):
        digests.keep(name, 1, hashlib.sha256(b"x"))
    assert digests.take("a", 1) is None
    assert digests.take("c", 1) == hashlib.sha256(b"x").hexdigest()
