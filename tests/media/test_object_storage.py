"""Media on object storage: a version is seen only whole, files are streamed with Range or
redirected to (presigned, or under a public base URL), and the original downloads again."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from pydantic import ValidationError

from reelout.clock import ManualClock
from reelout.config import Settings
from reelout.media.s3storage import S3MediaStore
from reelout.media.storage import ObjectOriginals
from reelout.objectstore import Bucket, Location
from tests.media.clips import Clips
from tests.media.test_delivery import ready_video, urls
from tests.support.jobs import run_jobs
from tests.support.live import LiveServer, live_server_fixture, serving
from tests.support.settings import make_settings

T = {"Tus-Resumable": "1.0.0"}


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


server = live_server_fixture(manual_clock=True)


def s3_store(server: LiveServer) -> S3MediaStore:
    store = server.runtime.media_store
    assert isinstance(store, S3MediaStore)
    return store


@pytest.fixture
def on_s3(tmp_path: Path, s3_storage: str, clock: ManualClock) -> Iterator[LiveServer]:
    with serving(make_settings(tmp_path, storage_url=s3_storage), clock) as live:
        yield live


@contextmanager
def redirecting(
    tmp_path: Path, storage: str, clock: ManualClock, **more: object
) -> Iterator[LiveServer]:
    settings = make_settings(tmp_path, storage_url=storage, media_delivery="redirect", **more)
    with serving(settings, clock) as live:
        yield live


@pytest.mark.s3
def test_a_version_is_served_only_once_its_marker_is_written(
    on_s3: LiveServer, clips: Clips
) -> None:
    video = ready_video(on_s3, clips("tiny"))
    uid, version = str(video["uid"]), urls(video)["master"].split("/")[-2]
    store, bucket = s3_store(on_s3), s3_store(on_s3).bucket
    stored = [k for k, _ in bucket.keys(bucket.key("media", uid, version) + "/")]
    assert bucket.size(bucket.key("media", uid, version + ".complete")) is not None
    half = "v-00000000000000aa"  # a publish that stopped after its files, before its marker
    for key in stored:
        bucket.copy(key, key.replace(version, half))
    where = f"{on_s3.url}/media/{uid}/{half}/master.m3u8"
    assert httpx.get(where).status_code == 404
    bucket.put(bucket.key("media", uid, half + ".complete"), b"{}")
    assert httpx.get(where).status_code == 200
    assert store.delete_version(uid, half) is True
    assert httpx.get(where).status_code == 404
    assert not [k for k, _ in bucket.keys(bucket.key("media", uid, half))]
    assert store.delete_version(uid, half) is False


@pytest.mark.s3
def test_the_server_is_ready_with_its_media_in_the_bucket(on_s3: LiveServer) -> None:
    with on_s3.client() as api:
        ready = api.get("/readyz")
    assert (ready.status_code, ready.json()["status"]) == (200, "ready")
    assert not (on_s3.runtime.settings.data_dir / "media").exists(), "nothing kept locally"


@pytest.mark.both_stores
def test_ranges_past_the_end_are_unsatisfiable(server: LiveServer, clips: Clips) -> None:
    mp4 = urls(ready_video(server, clips("tiny")))["mp4"]
    with httpx.Client() as http:
        whole = http.get(mp4).content
        size = len(whole)
        past = http.get(mp4, headers={"Range": f"bytes={size}-"})
        assert past.status_code == 416
        assert past.headers["content-range"] == f"bytes */{size}"
        tail = http.get(mp4, headers={"Range": "bytes=-100"})
        assert (tail.status_code, tail.content) == (206, whole[-100:])
        assert tail.headers["content-range"] == f"bytes {size - 100}-{size - 1}/{size}"
        head = http.head(mp4)
        assert (head.status_code, head.headers["content-length"]) == (200, str(size))
        open_end = http.get(mp4, headers={"Range": f"bytes={size - 10}-"})
        assert (open_end.status_code, open_end.content) == (206, whole[-10:])
        stale = http.get(mp4, headers={"Range": "bytes=0-9", "If-Range": '"not-it"'})
        assert (stale.status_code, stale.content) == (200, whole)


@pytest.mark.both_stores
def test_a_finished_upload_downloads_whole_and_in_ranges(server: LiveServer) -> None:
    data = bytes(range(256)) * 400
    with server.client() as api:
        made = api.post(
            "/files/",
            content=data,
            headers={
                **T,
                "Content-Type": "application/offset+octet-stream",
                "Upload-Length": str(len(data)),
            },
        )
        assert made.status_code == 201
        url = made.headers["Location"]
        assert api.get(url).content == data
        part = api.get(url, headers={"Range": "bytes=1000-1999"})
        assert (part.status_code, part.content) == (206, data[1000:2000])


@pytest.mark.s3
def test_redirect_sends_players_to_presigned_urls_and_serves_playlists_itself(
    tmp_path: Path, s3_storage: str, clock: ManualClock, clips: Clips
) -> None:
    with redirecting(tmp_path, s3_storage, clock, media_presign_seconds=900) as live:
        where = tiny_urls(live, clips)
        with httpx.Client() as http:
            for name in ("master", "media_playlist"):
                playlist = http.get(where[name])
                assert playlist.status_code == 200, "playlists come from Reelout"
                assert playlist.text.startswith("#EXTM3U")
            for name in ("segment", "mp4", "poster"):
                moved = http.get(where[name])
                assert moved.status_code == 302, name
                assert moved.headers["access-control-allow-origin"] == "*"
                assert moved.headers["cache-control"].endswith("max-age=900"), name
                target = moved.headers["location"]
                assert parse_qs(urlsplit(target).query)["X-Amz-Expires"] == ["900"]
                assert http.get(target).content == _object(live, where[name]), name
            assert http.get(where["segment"].replace("seg_00000", "seg_09999")).status_code == 404


@pytest.mark.s3
def test_a_presigned_url_lives_no_longer_than_the_playback_token(
    tmp_path: Path, s3_storage: str, clock: ManualClock, clips: Clips
) -> None:
    cdn = "https://cdn.example"
    with redirecting(tmp_path, s3_storage, clock, media_public_base_url=cdn) as live:
        video = ready_video(live, clips("tiny"))
        segment = urls(video)["segment"].replace("/240p/", "/180p/")
        with httpx.Client() as http:
            public = http.get(segment)
            key = s3_store(live).bucket.key("media", *segment.split("/media/")[1].split("/"))
            assert public.headers["location"] == f"https://cdn.example/{key}"
            with live.client() as api:
                api.patch(f"/api/v1/videos/{video['uid']}", json={"require_signed_urls": True})
                token = api.post(
                    f"/api/v1/videos/{video['uid']}/token", json={"expires_in": 300}
                ).json()["token"]
            clock.advance(100)
            assert http.get(segment).status_code == 401
            signed = http.get(segment, params={"token": token})
        assert signed.status_code == 302
        target = signed.headers["location"]
        assert not target.startswith("https://cdn.example"), "tokens are not bypassed"
        assert parse_qs(urlsplit(target).query)["X-Amz-Expires"] == ["200"]
        assert signed.headers["cache-control"] == "private, immutable, max-age=200"


def tiny_urls(live: LiveServer, clips: Clips) -> dict[str, str]:
    return {
        k: v.replace("/240p/", "/180p/") for k, v in urls(ready_video(live, clips("tiny"))).items()
    }


def _object(live: LiveServer, url: str) -> bytes | None:
    store = s3_store(live)
    return store.bucket.get(store.bucket.key("media", *url.split("/media/")[1].split("/")))


@pytest.fixture
def store(s3_storage: str, tmp_path: Path) -> S3MediaStore:
    return S3MediaStore(Bucket(Location.parse(s3_storage)), tmp_path / "scratch")


@pytest.mark.s3
def test_an_original_is_stored_only_when_written_whole(store: S3MediaStore) -> None:
    with store.write_original("abc") as out:
        out.write(b"first")
    assert store.has_original("abc") and store.original_size("abc") == 5
    with pytest.raises(RuntimeError, match="went away"):
        write_then_fail(store.write_original("abc"))
    with store.open_original("abc") as src:
        assert src.read() == b"first", "a failed write replaces nothing"
    out = store.write_original("abc")
    out.write(b"dropped")
    out.abandon()  # type: ignore[attr-defined]
    assert store.original_size("abc") == 5
    assert list((store.scratch_root / "abc").iterdir()) == [], "no local file is left"
    with pytest.raises(FileNotFoundError):
        store.open_original("nothere")


def write_then_fail(original: BinaryIO) -> None:
    with original as out:
        out.write(b"half of a second")
        raise RuntimeError("the client went away")


@pytest.mark.s3
def test_adopting_an_object_moves_it_in_as_the_original(store: S3MediaStore) -> None:
    assert isinstance(store, ObjectOriginals)
    upload = store.bucket.key("uploads", "u1")
    store.bucket.put(upload, b"finished upload")
    store.adopt_object("abc", upload)
    with store.open_original("abc") as src:
        assert src.read() == b"finished upload"
    assert store.bucket.size(upload) is None


@pytest.mark.s3
def test_a_publish_is_typed_and_a_deleted_video_leaves_nothing(
    store: S3MediaStore, tmp_path: Path
) -> None:
    folder = store.scratch("abc", "job1")
    (folder / "180p").mkdir()
    (folder / "master.m3u8").write_text("#EXTM3U\n")
    (folder / "180p" / "seg_00000.m4s").write_bytes(b"m" * 100)
    version = store.publish("abc", folder)
    assert not folder.exists()
    found = store.version_object("abc", version, "180p/seg_00000.m4s")
    assert found is not None and found.size == 100
    head = store.bucket.client.head_object(Bucket=store.bucket.name, Key=found.key)
    assert head["ContentType"] == "video/iso.segment"
    assert head["CacheControl"] == "public, max-age=31536000, immutable"
    assert store.version_object("abc", version, "../abc/original") is None
    assert store.check() is None
    store.delete_video("abc")
    assert list(store.bucket.keys(store.bucket.key("media"))) == []
    assert store.version_object("abc", version, "master.m3u8") is None
    gone = S3MediaStore(Bucket(Location.parse("s3://no-such-bucket-here")), tmp_path / "x")
    assert "no-such-bucket-here" in (gone.check() or "")


def test_nginx_cannot_send_files_that_live_in_a_bucket(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="REELOUT_MEDIA_DELIVERY"):
        Settings(data_dir=tmp_path, storage_url="s3://media/site", media_accel_redirect="/_media")


@pytest.mark.s3
def test_a_publish_that_fails_leaves_no_files_and_no_version(store: S3MediaStore) -> None:
    folder = store.scratch("abc", "job1")
    for n in range(20):
        (folder / f"seg_{n:05}.m4s").write_bytes(b"s" * 1000)
    (folder / "unreadable.m4s").symlink_to("/proc/self/mem")  # reading it fails (EIO)
    with pytest.raises(OSError, match="Input/output error"):
        store.publish("abc", folder)
    assert list(store.bucket.keys(store.bucket.key("media"))) == []


@pytest.mark.s3
def test_a_tus_upload_in_the_bucket_becomes_a_ready_video(on_s3: LiveServer, clips: Clips) -> None:
    data = clips("tiny").read_bytes()
    octets = {**T, "Content-Type": "application/offset+octet-stream"}
    with on_s3.client() as api:
        made = api.post(
            "/files/", content=data, headers={**octets, "Upload-Length": str(len(data))}
        )
        assert made.status_code == 201
        uid = made.headers["Reelout-Video-Id"]
        run_jobs(on_s3.runtime)  # the original was moved in inside the bucket, then checked
        video = api.get(f"/api/v1/videos/{uid}").json()
    assert video["status"]["state"] == "ready", video["status"]
    store = s3_store(on_s3)
    with store.open_original(uid) as src:
        assert src.read() == data
    assert not (store.scratch_root / uid).exists(), "no scratch folder is left"
