"""The S3 bucket wrapper against a real S3-compatible server (moto's, started by the tests)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from reelout.config import MAX_PARTS, MiB, Settings
from reelout.objectstore import Bucket, Location


def test_a_storage_url_names_a_bucket_and_a_prefix() -> None:
    assert Location.parse("s3://media/site/eu/") == Location("media", "site/eu/")
    assert Location.parse("s3://media") == Location("media", "")
    with pytest.raises(ValueError, match="not an s3:// URL"):
        Location.parse("/var/lib/reelout")


@pytest.mark.s3
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


@pytest.mark.s3
def test_readiness_names_a_missing_bucket(s3_storage: str) -> None:
    assert Bucket(Location.parse(s3_storage)).check() is None
    reason = Bucket(Location("no-such-bucket-here", "")).check()
    assert reason is not None and "no-such-bucket-here" in reason
    assert "REELOUT_STORAGE_URL" in reason


def test_the_storage_settings_refuse_what_cannot_work(tmp_path: Path) -> None:
    """A storage URL that names no bucket, parts below S3's 5 MiB, and an upload limit that
    10,000 parts cannot hold are refused when the settings load, each naming what to change."""
    ok = Settings(data_dir=tmp_path, storage_url="s3://media-bucket/site", s3_part_size=5 * MiB)
    assert ok.storage_url == "s3://media-bucket/site"
    for bad in ("/var/lib/reelout", "s3://", "s3://Bad_Bucket/x", "https://bucket/x"):
        with pytest.raises(ValidationError, match="storage_url"):
            Settings(data_dir=tmp_path, storage_url=bad)
    with pytest.raises(ValidationError, match="s3_part_size"):
        Settings(data_dir=tmp_path, s3_part_size=5 * MiB - 1)
    fits = MAX_PARTS * 5 * MiB
    Settings(data_dir=tmp_path, storage_url="s3://b-1/x", s3_part_size=5 * MiB, tus_max_size=fits)
    with pytest.raises(ValidationError, match="REELOUT_S3_PART_SIZE"):
        Settings(
            data_dir=tmp_path, storage_url="s3://b-1/x", s3_part_size=5 * MiB, tus_max_size=fits + 1
        )
