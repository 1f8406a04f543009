"""The S3 bucket wrapper against a real S3-compatible server (moto's, started by the tests)."""

from __future__ import annotations

import pytest

from reelout.objectstore import Bucket, Location

pytestmark = pytest.mark.s3


def test_a_storage_url_names_a_bucket_and_a_prefix() -> None:
    assert Location.parse("s3://media/site/eu/") == Location("media", "site/eu/")
    assert Location.parse("s3://media") == Location("media", "")
    with pytest.raises(ValueError, match="not an s3:// URL"):
        Location.parse("/var/lib/reelout")


def test_objects_are_stored_read_by_range_listed_and_deleted(s3_storage: str) -> None:
    bucket = Bucket(Location.parse(s3_storage))
    bucket.put(bucket.key("a", "one"), b"hello")
    bucket.put(bucket.key("a", "two"), b"world!")
    assert bucket.size(bucket.key("a", "one")) == 5
    assert bucket.get(bucket.key("a", "one"), 1, 2) == b"el"
    assert [k for k, _ in bucket.keys(bucket.key("a/"))] == ["site/a/one", "site/a/two"]
    bucket.delete_prefix(bucket.key("a/"))
    assert bucket.size(bucket.key("a", "one")) is None
    assert bucket.get(bucket.key("a", "two")) is None


def test_readiness_names_a_missing_bucket(s3_storage: str) -> None:
    assert Bucket(Location.parse(s3_storage)).check() is None
    reason = Bucket(Location("no-such-bucket-here", "")).check()
    assert reason is not None and "no-such-bucket-here" in reason
    assert "REELOUT_STORAGE_URL" in reason
