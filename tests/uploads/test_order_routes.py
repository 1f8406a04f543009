"""The three order-stage upload paths (tus link, direct binary, legacy base64) and stage listing."""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.live import LiveServer, serving
from tests.support.settings import make_settings
from tests.support.sockets import read_by_peer
from tests.support.stores import stored_videos
from tests.support.waiting import wait_until

T = {"Tus-Resumable": "1.0.0"}


@pytest.fixture
def api(live_server: LiveServer) -> Iterator[httpx.Client]:
    with live_server.client() as client:
        yield client


def stored(server: LiveServer, uid: str) -> bytes:
    with server.runtime.media_store.open_original(uid) as src:
        return src.read()


def test_tus_link_for_an_order_stage(live_server: LiveServer, api: httpx.Client) -> None:
    reply = api.post(
        "/api/v1/orders/A-17/inbound/videos",
        json={"upload": "tus", "meta": {"name": "dock"}, "max_bytes": 100},
    )
    assert reply.status_code == 201
    link = reply.json()
    assert link["upload"]["url"] == live_server.url + "/files/"
    with live_server.client(token=link["upload"]["token"]) as phone:
        too_big = phone.post("/files/", headers={**T, "Upload-Length": "101"})
        assert too_big.status_code == 413
        created = phone.post("/files/", headers={**T, "Upload-Length": "5"})
        assert created.headers["Reelout-Video-Id"] == link["uid"]
        done = phone.patch(
            created.headers["Location"],
            content=b"hello",
            headers={**T, "Content-Type": "application/offset+octet-stream", "Upload-Offset": "0"},
        )
        assert done.status_code == 204
        again = phone.post("/files/", headers={**T, "Upload-Length": "5"})
        assert again.status_code == 401
        assert again.json()["code"] == "UPLOAD_TOKEN_USED"
        assert phone.get(f"/api/v1/videos/{link['uid']}").status_code == 401
    video = api.get(f"/api/v1/videos/{link['uid']}").json()
    assert (video["order_id"], video["stage"], video["meta"]) == (
        "A-17",
        "inbound",
        {"name": "dock"},
    )
    assert video["status"]["state"] == "queued"


@pytest.mark.both_stores
def test_direct_binary_upload_streams_to_the_original(
    live_server: LiveServer, api: httpx.Client
) -> None:
    data = os.urandom(3 * 1024 * 1024 + 7)

    def body() -> Iterator[bytes]:
        for start in range(0, len(data), 65536):
            yield data[start : start + 65536]

    reply = api.post(
        "/api/v1/orders/A-17/work/videos?filename=clip.mp4",
        content=body(),
        headers={"Content-Type": "video/mp4"},
    )
    assert reply.status_code == 201, reply.text
    video = reply.json()
    assert video["original_sha256"] == hashlib.sha256(data).hexdigest()
    assert video["meta"]["filename"] == "clip.mp4"
    assert reply.headers["Location"] == f"/api/v1/videos/{video['uid']}"
    assert stored(live_server, video["uid"]) == data


@pytest.mark.both_stores
def test_multipart_upload(live_server: LiveServer, api: httpx.Client) -> None:
    data = os.urandom(200_000)
    reply = api.post(
        "/api/v1/orders/B-2/outbound/videos",
        files={"file": ("out.mp4", data, "video/mp4")},
        data={"note": "left dock"},
    )
    assert reply.status_code == 201, reply.text
    video = reply.json()
    assert video["meta"] == {"filename": "out.mp4", "note": "left dock"}
    assert stored(live_server, video["uid"]) == data
    empty = api.post(
        "/api/v1/orders/B-2/outbound/videos",
        data={"note": "no file"},
        files={"other": ("", b"", "text/plain")},
    )
    assert empty.status_code == 400


@pytest.mark.both_stores
def test_legacy_base64_still_works_and_is_deprecated(
    live_server: LiveServer, api: httpx.Client
) -> None:
    data = os.urandom(100_000)
    reply = api.post(
        "/api/v1/orders/A-17/inbound/videos",
        json={"filename": "old.mp4", "file_base64": base64.b64encode(data).decode()},
    )
    assert reply.status_code == 201, reply.text
    assert reply.headers["Deprecation"] == "true"
    video = reply.json()
    assert video["source"] == "legacy"
    assert video["meta"]["filename"] == "old.mp4"
    assert stored(live_server, video["uid"]) == data


@pytest.mark.both_stores
def test_limits_refuse_and_keep_nothing(tmp_path: Path, storage: str | None) -> None:
    limits = {"direct_max_bytes": 1000, "legacy_max_bytes": 600}
    with (
        serving(make_settings(tmp_path, storage_url=storage, **limits)) as server,
        server.client() as api,
    ):
        url = "/api/v1/orders/A/inbound/videos"
        at_limit = api.post(url, content=b"x" * 1000, headers={"Content-Type": "video/mp4"})
        assert at_limit.status_code == 201
        over = api.post(url, content=b"x" * 1001, headers={"Content-Type": "video/mp4"})
        assert (over.status_code, over.json()["code"]) == (413, "UPLOAD_TOO_LARGE")
        legacy_ok = api.post(url, json={"file_base64": base64.b64encode(b"y" * 600).decode()})
        assert legacy_ok.status_code == 201
        legacy_over = api.post(url, json={"file_base64": base64.b64encode(b"y" * 601).decode()})
        assert (legacy_over.status_code, legacy_over.json()["code"]) == (
            413,
            "LEGACY_UPLOAD_TOO_LARGE",
        )
        truncated = api.post(
            url, content=b'{"file_base64": "QUJ"}', headers={"Content-Type": "application/json"}
        )
        assert (truncated.status_code, truncated.json()["code"]) == (400, "INVALID_BASE64")
        listed = api.get(url).json()["videos"]
        assert len(listed) == 2, "refused uploads leave nothing behind"
        assert stored_videos(server.runtime) == {v["uid"] for v in listed}


def test_a_link_request_over_the_json_limit_is_refused_whole(tmp_path: Path) -> None:
    """A tus-link request is plain JSON: REELOUT_JSON_MAX_BYTES bounds it, as on every route."""
    with (
        serving(make_settings(tmp_path, json_max_bytes=2048)) as server,
        server.client() as api,
    ):
        url = "/api/v1/orders/A/inbound/videos"

        def link_request(size: int) -> bytes:
            shell = b'{"upload": "tus", "meta": {"note": ""}}'
            return shell.replace(b'""', b'"' + b"n" * (size - len(shell)) + b'"')

        at_limit = api.post(
            url, content=link_request(2048), headers={"Content-Type": "application/json"}
        )
        assert at_limit.status_code == 201, at_limit.text
        over = api.post(
            url, content=link_request(2049), headers={"Content-Type": "application/json"}
        )
        assert over.status_code == 413, over.text
        assert over.json()["code"] == "BODY_TOO_LARGE"
        assert "REELOUT_JSON_MAX_BYTES" in over.json()["message"]

        def nested(depth: int) -> bytes:  # REELOUT_JSON_MAX_DEPTH is 64 by default
            return b'{"meta": {"n": ' + b"[" * (depth - 2) + b"]" * (depth - 2) + b"}}"

        deep_ok = api.post(url, content=nested(64), headers={"Content-Type": "application/json"})
        assert deep_ok.status_code == 201, deep_ok.text
        too_deep = api.post(url, content=nested(65), headers={"Content-Type": "application/json"})
        assert (too_deep.status_code, too_deep.json()["code"]) == (400, "JSON_TOO_DEEP")
        kept = {v["uid"] for v in api.get(url).json()["videos"]}
        assert kept == {at_limit.json()["uid"], deep_ok.json()["uid"]}


def test_stage_listing_and_unknown_stage(api: httpx.Client) -> None:
    for stage in ("inbound", "work", "work"):
        api.post(
            f"/api/v1/orders/C-9/{stage}/videos",
            content=b"v",
            headers={"Content-Type": "video/mp4"},
        )
    work = api.get("/api/v1/orders/C-9/work/videos").json()["videos"]
    assert [v["stage"] for v in work] == ["work", "work"]
    assert all(v["status"]["state"] == "queued" for v in work)
    unknown = api.get("/api/v1/orders/C-9/shipping/videos")
    assert unknown.status_code == 404
    assert unknown.json()["details"]["valid_stages"] == ["inbound", "work", "outbound"]
    wrong_type = api.post(
        "/api/v1/orders/C-9/work/videos", content=b"x", headers={"Content-Type": "text/plain"}
    )
    assert wrong_type.status_code == 415


def test_admin_tus_upload_names_its_order_stage_in_metadata(api: httpx.Client) -> None:
    def meta(**pairs: str) -> str:
        return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in pairs.items())

    made = api.post(
        "/files/",
        headers={**T, "Upload-Length": "1", "Upload-Metadata": meta(order_id="Z-1", stage="work")},
    )
    video = api.get(f"/api/v1/videos/{made.headers['Reelout-Video-Id']}").json()
    assert (video["order_id"], video["stage"]) == ("Z-1", "work")
    assert "order_id" not in video["meta"]
    bad = api.post(
        "/files/",
        headers={**T, "Upload-Length": "1", "Upload-Metadata": meta(order_id="Z-1", stage="dock")},
    )
    assert (bad.status_code, bad.json()["code"]) == (400, "INVALID_ORDER_STAGE")
    assert len(api.get("/api/v1/orders/Z-1/work/videos").json()["videos"]) == 1


@pytest.mark.both_stores
def test_a_dropped_direct_upload_leaves_nothing(live_server: LiveServer, api: httpx.Client) -> None:
    import socket

    host, port = live_server.url.removeprefix("http://").split(":")
    on_s3 = live_server.runtime.settings.storage_url is not None
    # where the bytes land as they arrive: the original itself, or a file sent to S3 when whole
    media = live_server.runtime.settings.data_dir / ("scratch" if on_s3 else "media")
    landing = "*/incoming-*" if on_s3 else "*/original"
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(
            b"POST /api/v1/orders/X-1/inbound/videos HTTP/1.1\r\nHost: x\r\n"
            b"Authorization: Bearer " + live_server_token(api) + b"\r\n"
            b"Content-Type: video/mp4\r\nContent-Length: 1000000\r\n\r\n" + b"v" * 300_000
        )
        # the server made the video, opened its original and read every byte sent
        wait_until(lambda: any(media.glob(landing)) and read_by_peer(sock), 10,
                   "the server to receive the start of the body")  # fmt: skip
    wait_until(lambda: not any(media.iterdir()), 10, "the half-received original to be removed")
    assert api.get("/api/v1/orders/X-1/inbound/videos").json()["videos"] == []
    assert stored_videos(live_server.runtime) == set()


def live_server_token(api: httpx.Client) -> bytes:
    return api.headers["Authorization"].removeprefix("Bearer ").encode()
