"""The tus cases of shared/specs/tus-cases.md (T1 to T30, T37, T39), each against the real server."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from reelout.clock import ManualClock
from reelout.uploads.service import TusService
from tests.support.live import LiveServer, live_server_fixture, serving
from tests.support.settings import ADMIN_TOKEN, make_settings
from tests.support.waiting import wait_until

T = {"Tus-Resumable": "1.0.0"}
CT = {"Content-Type": "application/offset+octet-stream"}


# every case runs on SQLite and on PostgreSQL
live_server = live_server_fixture(name="live_server", per_database=True, per_store=True)


@pytest.fixture
def tus(live_server: LiveServer) -> Iterator[httpx.Client]:
    with live_server.client() as client:
        yield client


def create(client: httpx.Client, length: int | None = 11, **headers: str) -> str:
    extra = {"Upload-Length": str(length)} if length is not None else {}
    reply = client.post("/files/", headers={**T, **extra, **headers})
    assert reply.status_code == 201, reply.text
    return reply.headers["Location"]


def patch(
    client: httpx.Client, url: str, offset: int, body: bytes, **headers: str
) -> httpx.Response:
    return client.patch(
        url, content=body, headers={**T, **CT, "Upload-Offset": str(offset), **headers}
    )


def offset_of(client: httpx.Client, url: str) -> int:
    return int(client.head(url, headers=T).headers["Upload-Offset"])


def test_t1_options_advertises_what_is_implemented(tus: httpx.Client) -> None:
    reply = tus.options("/files/")
    assert reply.status_code == 200
    assert reply.headers["Tus-Version"] == "1.0.0"
    assert set(reply.headers["Tus-Extension"].split(",")) == {
        "creation",
        "creation-with-upload",
        "creation-defer-length",
        "termination",
        "expiration",
        "checksum",
        "concatenation",
    }
    assert int(reply.headers["Tus-Max-Size"]) > 0
    assert "sha1" in reply.headers["Tus-Checksum-Algorithm"].split(",")


def test_t2_metadata_is_echoed_exactly(tus: httpx.Client) -> None:
    url = create(tus, **{"Upload-Metadata": "filename aGVsbG8udHh0,flag"})
    assert tus.head(url, headers=T).headers["Upload-Metadata"] == "filename aGVsbG8udHh0,flag"


def test_t3_head_of_a_new_upload(tus: httpx.Client) -> None:
    reply = tus.head(create(tus), headers=T)
    assert reply.status_code == 200
    assert reply.headers["Upload-Offset"] == "0"
    assert reply.headers["Upload-Length"] == "11"
    assert reply.headers["Cache-Control"] == "no-store"
    assert reply.headers["Tus-Resumable"] == "1.0.0"
    assert reply.content == b""


def test_t4_t5_version_is_required(tus: httpx.Client) -> None:
    url = create(tus)
    assert tus.head(url).status_code == 412
    reply = tus.patch(
        url, content=b"hello", headers={"Tus-Resumable": "0.2.2", **CT, "Upload-Offset": "0"}
    )
    assert reply.status_code == 412
    assert reply.headers["Tus-Version"] == "1.0.0"
    assert offset_of(tus, url) == 0


def test_t6_t7_t8_t9_bad_patches_write_nothing(tus: httpx.Client) -> None:
    url = create(tus)
    wrong_type = tus.patch(
        url, content=b"hello", headers={**T, "Content-Type": "text/plain", "Upload-Offset": "0"}
    )
    assert wrong_type.status_code == 415
    assert tus.patch(url, content=b"hello", headers={**T, **CT}).status_code == 400
    for bad in ("-1", "abc"):
        assert patch(tus, url, 0, b"hello", **{"Upload-Offset": bad}).status_code == 400
    conflict = patch(tus, url, 3, b"hello")
    assert conflict.status_code == 409
    assert conflict.json()["code"] == "OFFSET_MISMATCH"
    assert offset_of(tus, url) == 0


def test_t10_to_t13_write_resume_and_finish_once(
    live_server: LiveServer, tus: httpx.Client
) -> None:
    url = create(tus)
    first = patch(tus, url, 0, b"hello")
    assert (first.status_code, first.headers["Upload-Offset"]) == (204, "5")
    assert patch(tus, url, 0, b"hello").status_code == 409
    assert offset_of(tus, url) == 5
    override = tus.post(
        url,
        content=b" world",
        headers={**T, **CT, "Upload-Offset": "5", "X-HTTP-Method-Override": "PATCH"},
    )
    assert (override.status_code, override.headers["Upload-Offset"]) == (204, "11")
    uid = override.headers["Reelout-Video-Id"]
    again = patch(tus, url, 11, b"")
    assert (again.status_code, again.headers["Upload-Offset"]) == (204, "11")
    video = tus.get(f"/api/v1/videos/{uid}").json()
    assert video["status"]["state"] == "queued"
    assert video["original_sha256"] == hashlib.sha256(b"hello world").hexdigest()
    jobs = live_server.runtime.db
    with jobs.session() as session:
        from sqlalchemy import func, select

        from reelout.jobs.models import Job

        count = session.scalar(
            select(func.count()).select_from(Job).where(Job.kind == "media.process")
        )
    assert count == 1, "the finish hook must run exactly once"
    assert tus.get(url).content == b"hello world"


def test_t14_t15_overflow_is_refused_whole(tus: httpx.Client) -> None:
    url = create(tus, 10)
    assert patch(tus, url, 0, b"x" * 16).status_code == 413
    assert offset_of(tus, url) == 0

    def chunked() -> Iterator[bytes]:
        yield b"x" * 8
        yield b"x" * 8

    reply = tus.patch(url, content=chunked(), headers={**T, **CT, "Upload-Offset": "0"})
    assert reply.status_code == 413
    assert offset_of(tus, url) == 0, "a body that overflows is discarded whole"


@pytest.mark.parametrize("upload_id", ["0" * 32, "abc", "..%2F..%2Fetc", "a%00b"])
def test_t16_unknown_ids_are_404(tus: httpx.Client, upload_id: str) -> None:
    url = f"/files/{upload_id}"
    assert tus.head(url, headers=T).status_code == 404
    assert patch(tus, url, 0, b"x").status_code == 404
    assert tus.delete(url, headers=T).status_code == 404


@pytest.mark.parametrize(
    "headers",
    [
        {"Upload-Length": "11", "Upload-Defer-Length": "1"},
        {"Upload-Defer-Length": "2"},
        {},
        {"Upload-Length": "abc"},
        {"Upload-Length": "-1"},
    ],
)
def test_t17_t18_bad_lengths(tus: httpx.Client, headers: dict[str, str]) -> None:
    reply = tus.post("/files/", headers={**T, **headers})
    assert reply.status_code == 400
    assert "Location" not in reply.headers
    assert reply.json()["code"]


def test_t19_above_the_maximum_creates_nothing(tmp_path: Path) -> None:
    with (
        serving(make_settings(tmp_path, tus_max_size=1000)) as server,
        server.client() as client,
    ):
        assert client.post("/files/", headers={**T, "Upload-Length": "1001"}).status_code == 413
        assert client.post("/files/", headers={**T, "Upload-Length": "1000"}).status_code == 201
        assert client.options("/files/").headers["Tus-Max-Size"] == "1000"
        videos = client.get("/api/v1/videos").json()["videos"]
        assert len(videos) == 1


def test_t20_empty_upload_finishes_at_once(tus: httpx.Client) -> None:
    reply = tus.post("/files/", headers={**T, "Upload-Length": "0"})
    head = tus.head(reply.headers["Location"], headers=T)
    assert head.headers["Upload-Offset"] == head.headers["Upload-Length"] == "0"
    video = tus.get(f"/api/v1/videos/{reply.headers['Reelout-Video-Id']}").json()
    assert video["status"]["state"] == "queued"


@pytest.mark.parametrize(
    "metadata",
    [
        "a b c",
        "k dg==,k dg==",
        "k !!!notbase64",
        "k " + "QUFB" * 2000,
        "k dg==,,x",
    ],
)
def test_t21_malformed_metadata(tus: httpx.Client, metadata: str) -> None:
    reply = tus.post("/files/", headers={**T, "Upload-Length": "1", "Upload-Metadata": metadata})
    if metadata.strip():
        assert reply.status_code == 400, metadata
    else:
        assert reply.status_code == 201


def test_t22_t23_deferred_length(tus: httpx.Client) -> None:
    url = create(tus, None, **{"Upload-Defer-Length": "1"})
    head = tus.head(url, headers=T)
    assert head.headers["Upload-Defer-Length"] == "1"
    assert "Upload-Length" not in head.headers
    done = patch(tus, url, 0, b"hello", **{"Upload-Length": "5"})
    assert (done.status_code, done.headers["Upload-Offset"]) == (204, "5")
    assert tus.head(url, headers=T).headers["Upload-Length"] == "5"
    assert patch(tus, url, 5, b"", **{"Upload-Length": "6"}).status_code == 400


def test_t24_t25_creation_with_upload(tus: httpx.Client) -> None:
    reply = tus.post("/files/", content=b"hello", headers={**T, **CT, "Upload-Length": "5"})
    assert (reply.status_code, reply.headers["Upload-Offset"]) == (201, "5")
    assert "Location" in reply.headers
    wrong = tus.post(
        "/files/",
        content=b"hello",
        headers={**T, "Content-Type": "text/plain", "Upload-Length": "5"},
    )
    assert wrong.status_code == 415, "a body of the wrong type is refused, never stored"


def b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


def test_t26_t27_checksums(tus: httpx.Client) -> None:
    url = create(tus, 8)
    wrong = patch(tus, url, 0, b"abcd", **{"Upload-Checksum": "sha1 " + b64(b"x" * 20)})
    assert wrong.status_code == 460
    assert offset_of(tus, url) == 0
    for algorithm in ("sha1", "md5", "sha256"):
        digest = hashlib.new(algorithm, b"ab").digest()
        offset = offset_of(tus, url)
        ok = patch(tus, url, offset, b"ab", **{"Upload-Checksum": f"{algorithm} {b64(digest)}"})
        assert ok.status_code == 204, (algorithm, ok.text)
    for header in ("crc99 AAAA", "sha1", "sha1 ***"):
        assert patch(tus, url, 6, b"ab", **{"Upload-Checksum": header}).status_code == 400
    assert offset_of(tus, url) == 6


def test_t28_termination_removes_the_data(live_server: LiveServer, tus: httpx.Client) -> None:
    url = create(tus)
    patch(tus, url, 0, b"hello")
    upload_id = url.rsplit("/", 1)[-1]
    assert live_server.runtime.upload_store.exists(upload_id)
    assert tus.delete(url, headers=T).status_code == 204
    assert tus.head(url, headers=T).status_code in (404, 410)
    assert patch(tus, url, 5, b" world").status_code in (404, 410)
    assert not live_server.runtime.upload_store.exists(upload_id)


def test_t29_expiry_and_the_reaper(tmp_path: Path) -> None:
    clock = ManualClock()
    with (
        serving(make_settings(tmp_path, tus_expiration_seconds=3600), clock) as server,
        server.client() as client,
    ):
        url = create(client)
        reply = patch(client, url, 0, b"hello")
        assert reply.headers["Upload-Expires"].endswith(" GMT")
        clock.advance(3601)
        assert client.head(url, headers=T).status_code == 410
        assert TusService(server.runtime).reap_expired() == 1
        assert client.head(url, headers=T).status_code == 404
        assert not server.runtime.upload_store.exists(url.rsplit("/", 1)[-1])
        uid = reply.headers["Reelout-Video-Id"]
        assert client.get(f"/api/v1/videos/{uid}").json()["status"]["error_code"] == (
            "ERR_UPLOAD_EXPIRED"
        )


def test_t30_cors(tus: httpx.Client) -> None:
    preflight = tus.options(
        "/files/",
        headers={
            "Origin": "https://admin.example",
            "Access-Control-Request-Method": "PATCH",
            "Access-Control-Request-Headers": "Upload-Checksum, X-HTTP-Method-Override, X-Request-ID",
        },
    )
    assert preflight.status_code in (200, 204)
    assert preflight.headers["Access-Control-Allow-Origin"] in ("*", "https://admin.example")
    assert "PATCH" in preflight.headers["Access-Control-Allow-Methods"]
    allowed = preflight.headers["Access-Control-Allow-Headers"].lower()
    for name in ("upload-checksum", "x-http-method-override", "x-request-id", "upload-offset"):
        assert name in allowed
    reply = tus.post("/files/", headers={**T, "Upload-Length": "1", "Origin": "https://a.example"})
    exposed = {h.strip().lower() for h in reply.headers["Access-Control-Expose-Headers"].split(",")}
    for name in (
        "location",
        "upload-offset",
        "upload-length",
        "tus-resumable",
        "upload-metadata",
        "upload-defer-length",
        "upload-concat",
        "upload-expires",
        "reelout-video-id",
    ):
        assert name in exposed


@pytest.mark.parametrize("behind_proxy", [True, False])
def test_t37_forwarded_only_when_configured(tmp_path: Path, behind_proxy: bool) -> None:
    with (
        serving(make_settings(tmp_path, behind_proxy=behind_proxy)) as server,
        server.client() as client,
    ):
        reply = client.post(
            "/files/",
            headers={
                **T,
                "Upload-Length": "1",
                "Forwarded": "proto=https;host=x.example:443",
                "X-Forwarded-Prefix": "/media",
            },
        )
        location = reply.headers["Location"]
        if behind_proxy:
            assert location.startswith("https://x.example/media/files/")
        else:
            assert location.startswith(server.url + "/files/")


def test_t39_concatenation(tus: httpx.Client) -> None:
    parts = []
    for text in (b"one ", b"two ", b"three"):
        url = create(tus, len(text), **{"Upload-Concat": "partial"})
        assert patch(tus, url, 0, text).status_code == 204
        parts.append(url)
    final = tus.post("/files/", headers={**T, "Upload-Concat": "final;" + " ".join(parts)})
    assert final.status_code == 201
    head = tus.head(final.headers["Location"], headers=T)
    assert head.headers["Upload-Offset"] == head.headers["Upload-Length"] == "13"
    assert head.headers["Upload-Concat"].startswith("final;")
    assert tus.get(final.headers["Location"]).content == b"one two three"
    assert patch(tus, final.headers["Location"], 13, b"").status_code == 403
    unfinished = create(tus, 5, **{"Upload-Concat": "partial"})
    bad = tus.post("/files/", headers={**T, "Upload-Concat": f"final;{unfinished}"})
    assert bad.status_code == 400
    unknown = tus.post("/files/", headers={**T, "Upload-Concat": "final;/files/" + "0" * 32})
    assert unknown.status_code == 400


def test_auth_is_required(live_server: LiveServer) -> None:
    with live_server.client(token=None) as anon:
        assert anon.post("/files/", headers={**T, "Upload-Length": "1"}).status_code == 401
    with live_server.client(token="nope") as bad:
        assert bad.post("/files/", headers={**T, "Upload-Length": "1"}).status_code == 401
    assert ADMIN_TOKEN


def test_download_supports_ranges(tus: httpx.Client) -> None:
    reply = tus.post("/files/", content=b"hello world", headers={**T, **CT, "Upload-Length": "11"})
    url = reply.headers["Location"]
    part = tus.get(url, headers={"Range": "bytes=6-10"})
    assert (part.status_code, part.content) == (206, b"world")
    assert tus.get(url).content == b"hello world"
    unfinished = create(tus, 5)
    assert tus.get(unfinished).json()["code"] == "UPLOAD_NOT_FINISHED"


def test_a_stranger_cannot_interrupt_a_busy_upload(
    live_server: LiveServer, tus: httpx.Client
) -> None:
    import threading

    url = create(tus, 10)
    release = threading.Event()
    result: dict[str, int] = {}

    def body() -> Iterator[bytes]:
        yield b"hello"
        release.wait(10)
        yield b"world"

    def writer() -> None:
        with live_server.client() as own:
            result["status"] = patch(own, url, 0, body()).status_code  # type: ignore[arg-type]

    thread = threading.Thread(target=writer)
    thread.start()
    upload_id = url.rsplit("/", 1)[-1]
    wait_until(lambda: live_server.runtime.locker.is_held(upload_id), 5, "the writer's lock")
    with live_server.client(token="rlo_admin_not-a-key") as stranger:
        assert stranger.head(url, headers=T).status_code == 401
    assert live_server.runtime.locker.is_held(upload_id), "the writer was not disturbed"
    release.set()
    thread.join(10)
    assert result["status"] == 204
    assert offset_of(tus, url) == 10


def test_malformed_ids_never_reach_the_lock_files(tmp_path: Path) -> None:
    with serving(make_settings(tmp_path, workers=2)) as server:  # the file locker
        with server.client() as client:
            for upload_id in ("a%00b", "x" * 300, "..", "0" * 32):
                assert client.head(f"/files/{upload_id}", headers=T).status_code == 404
                assert patch(client, f"/files/{upload_id}", 0, b"x").status_code == 404
        locks = server.runtime.settings.data_dir / "locks"
        assert {p.name for p in locks.iterdir()} <= {"0" * 32 + ".lock"}
