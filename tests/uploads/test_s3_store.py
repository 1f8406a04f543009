"""The tus upload store on object storage, against a real S3 server (moto's, started by the tests).

Two store objects on one bucket stand for two hosts: what one wrote, the other reads."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import httpx
import pytest
from botocore.config import Config

from reelout.objectstore import Bucket, Location, make_client
from reelout.uploads.receiving import BATCH_BYTES
from reelout.uploads.s3store import MIN_PART, S3UploadStore
from reelout.uploads.store import StorageFailed
from tests.support.live import serving
from tests.support.s3 import MotoServer, moto_server
from tests.support.settings import make_settings
from tests.support.waiting import wait_until

pytestmark = pytest.mark.s3

PART = MIN_PART


@pytest.fixture
def bucket(s3_storage: str) -> Bucket:
    return Bucket(Location.parse(s3_storage))


def hosts(bucket: Bucket) -> tuple[S3UploadStore, S3UploadStore]:
    return S3UploadStore(bucket, PART), S3UploadStore(Bucket(bucket.location), PART)


def append(store: S3UploadStore, upload_id: str, *blocks: bytes, keep: bool = True) -> None:
    writer = store.open_append(upload_id, provisional=not keep)
    for block in blocks:
        writer.write(block)
    writer.close() if keep else writer.discard()


def read_all(store: S3UploadStore, upload_id: str) -> bytes:
    with store.open_read(upload_id) as src:
        return src.read()


def multipart_uploads(bucket: Bucket) -> list[str]:
    reply = bucket.client.list_multipart_uploads(Bucket=bucket.name)
    return [item["Key"] for item in reply.get("Uploads", [])]


def test_patches_become_parts_and_a_tail_that_the_next_patch_takes_up(bucket: Bucket) -> None:
    a, b = hosts(bucket)
    data = os.urandom(2 * PART + 123_456)
    a.create("u1")
    append(a, "u1", data[:1000])  # shorter than a part: waits as the incomplete part
    assert b.size("u1") == 1000 and b.record("u1").parts == ()  # type: ignore[union-attr]
    append(b, "u1", data[1000 : PART + 5000])  # the other host carries on from the tail
    record = a.record("u1")
    assert record is not None and [p.size for p in record.parts] == [PART]
    assert a.size("u1") == PART + 5000
    append(a, "u1", data[PART + 5000 :])
    b.finish("u1")
    b.finish("u1")  # idempotent
    assert read_all(a, "u1") == data
    assert a.size("u1") == len(data) and multipart_uploads(bucket) == []
    leftovers = [key for key, _ in bucket.keys(a.object_key("u1") + ".")]
    assert leftovers == []


def test_a_provisional_patch_that_is_discarded_leaves_the_offset_where_it_was(
    bucket: Bucket,
) -> None:
    store, _ = hosts(bucket)
    data = os.urandom(PART + 10)
    store.create("u2")
    append(store, "u2", data[:10])
    append(store, "u2", os.urandom(PART + 99), keep=False)  # e.g. its checksum did not match
    assert store.size("u2") == 10
    append(store, "u2", data[10:])  # the retry reuses the discarded part's number
    store.finish("u2")
    assert read_all(store, "u2") == data


def test_a_plain_patch_commits_part_by_part_and_discard_puts_the_record_back(
    bucket: Bucket,
) -> None:
    store, other = hosts(bucket)
    store.create("u3")
    append(store, "u3", b"x" * 100)
    writer = store.open_append("u3")
    writer.write(os.urandom(2 * PART))
    writer.write(b"")  # the second part has gone up (one is sent while the next arrives)
    writer._wait()  # type: ignore[attr-defined]
    assert other.size("u3") >= PART  # committed before the PATCH ended: a crash keeps it
    writer.discard()  # e.g. the body ran past the upload's length
    assert other.size("u3") == 100
    store.finish("u3")
    assert read_all(other, "u3") == b"x" * 100


def test_an_upload_made_at_a_key_becomes_that_object_and_leaves_nothing_under_uploads(
    bucket: Bucket,
) -> None:
    a, b = hosts(bucket)
    data = os.urandom(PART + 77)
    a.create_at("u7", bucket.key("media", "v1", "original"))  # where a video's original goes
    append(a, "u7", data[:PART])
    append(b, "u7", data[PART:])
    assert b.size("u7") == len(data)
    b.finish("u7")
    assert bucket.get(bucket.key("media", "v1", "original")) == data
    assert list(bucket.keys(bucket.key("uploads/"))) == [] and multipart_uploads(bucket) == []
    a.create_at("u8", bucket.key("media", "v2", "original"))
    append(a, "u8", os.urandom(PART + 1))
    b.delete("u8")  # terminated: the multipart upload at the key is aborted, nothing is left
    assert (
        multipart_uploads(bucket) == []
        and bucket.size(bucket.key("media", "v2", "original")) is None
    )


def test_an_empty_upload_finishes_as_an_empty_object(bucket: Bucket) -> None:
    store, _ = hosts(bucket)
    store.create("u4")
    store.finish("u4")
    assert read_all(store, "u4") == b"" and multipart_uploads(bucket) == []


@pytest.mark.parametrize("sizes", [(PART, PART + 7, 11), (10, 20, 30)], ids=["copied", "streamed"])
def test_concatenation_copies_parts_server_side_or_streams_small_ones(
    bucket: Bucket, sizes: tuple[int, ...]
) -> None:
    store, _ = hosts(bucket)
    pieces = [os.urandom(size) for size in sizes]
    for n, piece in enumerate(pieces):
        store.create(f"p{n}")
        append(store, f"p{n}", piece)
        store.finish(f"p{n}")
    store.create("final")
    store.concatenate("final", [f"p{n}" for n in range(len(pieces))])
    assert store.size("final") == sum(sizes)
    store.finish("final")
    assert read_all(store, "final") == b"".join(pieces)


def test_termination_aborts_the_multipart_upload_and_removes_every_object(bucket: Bucket) -> None:
    store, other = hosts(bucket)
    store.create("u5")
    append(store, "u5", os.urandom(PART + 3))
    assert multipart_uploads(bucket) == [store.object_key("u5")]
    other.delete("u5")
    assert multipart_uploads(bucket) == [] and not store.exists("u5")
    assert list(bucket.keys(bucket.key("uploads/"))) == []
    with pytest.raises(FileNotFoundError):
        store.size("u5")


def test_abandoned_multipart_uploads_without_a_record_are_aborted(bucket: Bucket) -> None:
    store, _ = hosts(bucket)
    for upload_id in ("kept", "orphan"):
        store.create(upload_id)
    # moto stamps every multipart upload as started on 2010-11-10
    assert store.abort_abandoned(datetime(2010, 11, 1, tzinfo=UTC), set()) == 0  # too new
    later = datetime.now(UTC) + timedelta(minutes=1)
    assert store.abort_abandoned(later, {"kept"}) == 1
    assert multipart_uploads(bucket) == [store.object_key("kept")]
    assert store.exists("kept") and not store.exists("orphan")
    store.create_at("in-place", bucket.key("media", "v9", "original"))  # a video's upload
    assert store.abort_abandoned(later, {"kept", "in-place"}) == 0
    assert store.abort_abandoned(later, {"kept"}) == 1
    assert multipart_uploads(bucket) == [store.object_key("kept")]
    assert not store.exists("in-place")


def test_storage_that_goes_away_mid_patch_is_a_storage_failure(tmp_path: Path) -> None:
    with moto_server(tmp_path / "moto.log") as moto:  # a server of this test's own
        config = Config(retries={"mode": "standard", "max_attempts": 2}, connect_timeout=1)
        client = boto3.client("s3", endpoint_url=moto.endpoint, config=config)
        client.create_bucket(Bucket="short-lived")
        store = S3UploadStore(Bucket(Location("short-lived", ""), client), PART)
        store.create("u6")
        append(store, "u6", b"y" * 10)
        writer = store.open_append("u6")
        writer.write(b"z" * 10)
    with pytest.raises(StorageFailed, match="object storage"):
        writer.close()  # the server is gone


@contextmanager
def on_storage_that_can_go(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[MotoServer, httpx.Client]]:
    """A live server on a bucket of an S3 server of the test's own (which the test may stop);
    yields that S3 server and a tus client of the live server."""
    with moto_server(tmp_path / "moto.log") as moto:
        monkeypatch.setenv("AWS_ENDPOINT_URL", moto.endpoint)
        monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
        make_client().create_bucket(Bucket="short-lived")
        settings = make_settings(tmp_path, storage_url="s3://short-lived/site", s3_part_size=PART)
        with serving(settings) as server, server.client() as tus:
            tus.headers["Tus-Resumable"] = "1.0.0"
            yield moto, tus


def test_when_storage_fails_a_patch_answers_503_with_where_to_resume(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, s3_endpoint: str
) -> None:
    with on_storage_that_can_go(tmp_path, monkeypatch) as (moto, tus):
        created = tus.post("/files/", headers={"Upload-Length": str(4 * PART)})
        path = httpx.URL(created.headers["Location"]).path
        first = tus.patch(path, content=os.urandom(PART + 10), headers=chunk(0))
        assert first.status_code == 204

        def body() -> Iterator[bytes]:
            # a whole part goes up; more than a batch (receiving.BATCH_BYTES) is left over, so
            # the part's bytes have surely reached the store while this body waits
            yield os.urandom(PART + 2 * BATCH_BYTES)
            wait_until(lambda: other_host.size(upload_id) == 2 * PART, 30, "a second part")
            moto.stop()  # object storage goes away in the middle of the body
            yield os.urandom(PART)

        upload_id = path.rsplit("/", 1)[-1]
        other_host = S3UploadStore(Bucket(Location("short-lived", "site/")), PART)
        length = {"Content-Length": str(2 * PART + 2 * BATCH_BYTES)}
        second = tus.patch(path, content=body(), headers=chunk(PART + 10) | length)
        assert second.status_code == 503, second.text
        assert second.json()["code"] == "STORAGE_UNAVAILABLE"
        assert "Upload-Offset" not in second.headers  # unknown while storage is away
        assert "ask HEAD" in second.json()["message"]
        head = tus.head(path)
        assert head.status_code == 503


def chunk(offset: int) -> dict[str, str]:
    return {"Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream"}


def test_when_storage_fails_a_download_answers_503_not_500(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, s3_endpoint: str
) -> None:
    with on_storage_that_can_go(tmp_path, monkeypatch) as (moto, tus):
        data = os.urandom(1000)
        created = tus.post(
            "/files/",
            content=data,
            headers={
                "Upload-Length": "1000",
                "Content-Type": "application/offset+octet-stream",
            },
        )
        path = httpx.URL(created.headers["Location"]).path
        assert tus.get(path).content == data  # the original, from the bucket
        moto.stop()
        down = tus.get(path)
        assert down.status_code == 503, down.text
        assert down.json()["code"] == "STORAGE_UNAVAILABLE"
