"""A creator upload link's max_bytes bounds every tus path: partials, deferred lengths, finals."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from reelout.uploads.service import link_lock_key
from tests.support.live import LiveServer, live_server_fixture, serving
from tests.support.raw_http import RawRequest
from tests.support.settings import make_settings
from tests.support.waiting import wait_until

T = {"Tus-Resumable": "1.0.0"}
CT = {"Content-Type": "application/offset+octet-stream"}
PARTIAL = {"Upload-Concat": "partial"}
DEFER = {"Upload-Defer-Length": "1"}


server = live_server_fixture(per_database=True, tus_max_partials=3)


def link(server: LiveServer, max_bytes: int = 100) -> httpx.Client:
    """A client holding a new creator link's token."""
    with server.client() as api:
        made = api.post("/api/v1/videos", json={"max_bytes": max_bytes})
    assert made.status_code == 201, made.text
    return server.client(token=made.json()["upload"]["token"])


def create(client: httpx.Client, **headers: str) -> httpx.Response:
    return client.post("/files/", headers={**T, **headers})


def patch(
    client: httpx.Client, url: str, offset: int, body: bytes, **headers: str
) -> httpx.Response:
    return client.patch(
        url, content=body, headers={**T, **CT, "Upload-Offset": str(offset), **headers}
    )


def chunked(data: bytes) -> Iterator[bytes]:
    """A body without Content-Length: the limit must hold while it streams."""
    for start in range(0, len(data), 10):
        yield data[start : start + 10]


def offset_of(client: httpx.Client, url: str) -> int:
    return int(client.head(url, headers=T).headers["Upload-Offset"])


def stored(server: LiveServer, url: str) -> int:
    return server.runtime.upload_store.size(url.rsplit("/", 1)[-1])


def test_partials_share_the_links_bytes(server: LiveServer) -> None:
    with link(server) as phone:
        first = create(phone, **PARTIAL, **{"Upload-Length": "60"})
        assert first.status_code == 201
        too_much = create(phone, **PARTIAL, **{"Upload-Length": "41"})
        assert (too_much.status_code, too_much.json()["code"]) == (413, "UPLOAD_TOO_LARGE")
        assert too_much.json()["details"] == {"max_bytes": 100, "used_bytes": 60}
        assert "Location" not in too_much.headers
        assert create(phone, **PARTIAL, **{"Upload-Length": "40"}).status_code == 201
        huge = create(phone, **PARTIAL, **{"Upload-Length": str(10 * 1024**3)})
        assert huge.status_code == 413, "a 10 GB partial on a 100-byte link"


def test_a_deferred_partial_stops_at_what_the_link_has_left(server: LiveServer) -> None:
    with link(server) as phone:
        assert create(phone, **PARTIAL, **{"Upload-Length": "60"}).status_code == 201
        url = create(phone, **PARTIAL, **DEFER).headers["Location"]
        over = patch(phone, url, 0, b"x" * 41)
        assert (over.status_code, over.json()["code"]) == (413, "UPLOAD_TOO_LARGE")
        assert over.json()["details"] == {"max_bytes": 40}
        streamed = phone.patch(
            url, content=chunked(b"x" * 2000), headers={**T, **CT, "Upload-Offset": "0"}
        )
        assert streamed.status_code == 413
        assert offset_of(phone, url) == stored(server, url) == 0, "nothing past the limit"
        assert patch(phone, url, 0, b"x" * 40).status_code == 204
        assert offset_of(phone, url) == 40
        full = create(phone, **PARTIAL, **{"Upload-Length": "1"})
        assert full.json()["details"] == {"max_bytes": 100, "used_bytes": 100}, (
            "a deferred partial counts the bytes it holds"
        )


def test_a_deferred_partial_cannot_declare_past_the_link(server: LiveServer) -> None:
    with link(server) as phone:
        url = create(phone, **PARTIAL, **DEFER).headers["Location"]
        assert patch(phone, url, 0, b"x" * 10).status_code == 204
        other = create(phone, **PARTIAL, **{"Upload-Length": "50"})
        assert other.status_code == 201
        late = patch(phone, url, 10, b"", **{"Upload-Length": "51"})
        assert (late.status_code, late.json()["code"]) == (413, "UPLOAD_TOO_LARGE")
        assert "Upload-Length" not in phone.head(url, headers=T).headers
        done = patch(phone, url, 10, b"y" * 40, **{"Upload-Length": "50"})
        assert (done.status_code, done.headers["Upload-Offset"]) == (204, "50")


def test_a_deferred_upload_stops_at_max_bytes(server: LiveServer) -> None:
    with link(server) as phone:
        url = create(phone, **DEFER).headers["Location"]
        over = patch(phone, url, 0, b"x" * 2000)
        assert (over.status_code, over.json()["code"]) == (413, "UPLOAD_TOO_LARGE")
        streamed = phone.patch(
            url, content=chunked(b"x" * 2000), headers={**T, **CT, "Upload-Offset": "0"}
        )
        assert streamed.status_code == 413
        assert offset_of(phone, url) == stored(server, url) == 0
        assert patch(phone, url, 0, b"x" * 100).status_code == 204
        assert patch(phone, url, 100, b"x").status_code == 413
        late = patch(phone, url, 100, b"", **{"Upload-Length": "101"})
        assert (late.status_code, late.json()["code"]) == (413, "UPLOAD_TOO_LARGE")
        finished = patch(phone, url, 100, b"", **{"Upload-Length": "100"})
        assert finished.status_code == 204
        uid = finished.headers["Reelout-Video-Id"]
    with server.client() as api:
        assert api.get(f"/api/v1/videos/{uid}").json()["status"]["state"] == "queued"


def test_partials_per_link_are_capped(server: LiveServer) -> None:
    with link(server) as phone:
        for _ in range(3):  # REELOUT_TUS_MAX_PARTIALS=3
            assert create(phone, **PARTIAL, **{"Upload-Length": "1"}).status_code == 201
        fourth = create(phone, **PARTIAL, **{"Upload-Length": "1"})
        assert (fourth.status_code, fourth.json()["code"]) == (409, "PARTIAL_LIMIT_REACHED")
        assert fourth.json()["details"] == {"max_partials": 3}
    with server.client() as admin:  # the cap is per link: an admin's partials are not counted
        assert create(admin, **PARTIAL, **{"Upload-Length": "1"}).status_code == 201


def test_the_final_upload_is_held_to_the_link(server: LiveServer) -> None:
    with link(server) as phone:
        part = create(phone, **PARTIAL, **{"Upload-Length": "60"}).headers["Location"]
        assert patch(phone, part, 0, b"x" * 60).status_code == 204
        twice = create(phone, **{"Upload-Concat": f"final;{part} {part}"})
        assert (twice.status_code, twice.json()["code"]) == (413, "UPLOAD_TOO_LARGE")
        many = create(phone, **{"Upload-Concat": "final;" + " ".join([part] * 4)})
        assert (many.status_code, many.json()["code"]) == (400, "INVALID_CONCAT")
        once = create(phone, **{"Upload-Concat": f"final;{part}"})
        assert once.status_code == 201, "a refused final leaves the link usable"
        assert offset_of(phone, once.headers["Location"]) == 60


def test_a_deferred_partial_being_written_holds_the_links_budget(tmp_path: Path) -> None:
    with serving(make_settings(tmp_path, tus_lock_timeout_seconds=0.3)) as live:
        with live.client() as api:
            made = api.post("/api/v1/videos", json={"max_bytes": 100}).json()
        token, uid = made["upload"]["token"], made["uid"]
        with live.client(token=token) as phone:
            url = urlsplit(create(phone, **PARTIAL, **DEFER).headers["Location"]).path
            headers = {"Authorization": f"Bearer {token}", **T, **CT}
            writer = RawRequest(
                live.url, "PATCH", url, {**headers, "Upload-Offset": "0", "Content-Length": "50"}
            )
            writer.send(b"x" * 30)
            wait_until(
                lambda: live.runtime.locker.is_held(link_lock_key(uid)),
                10,
                "the PATCH to take the link's lock",
                interval=0.01,
            )
            busy = create(phone, **PARTIAL, **{"Upload-Length": "60"})
            assert (busy.status_code, busy.json()["code"]) == (423, "UPLOAD_LOCKED")
            writer.send(b"x" * 20)
            done = writer.response(timeout=10)
            writer.close()
            assert done is not None and done.status == 204
            assert done.headers["upload-offset"] == "50"
            assert create(phone, **PARTIAL, **{"Upload-Length": "51"}).status_code == 413
            assert create(phone, **PARTIAL, **{"Upload-Length": "50"}).status_code == 201


def test_a_links_upload_metadata_joins_the_videos_meta_but_moves_nothing(
    server: LiveServer,
) -> None:
    """The uploader's tus metadata is kept beside the link's `meta` (its keys winning, as a
    direct upload's fields do), but `order_id` and `stage` there attach the video to no order:
    the link decided that."""
    with server.client() as api:
        made = api.post("/api/v1/videos", json={"max_bytes": 100, "meta": {"title": "dock 4"}})
    uid = made.json()["uid"]
    metadata = "viewer_id dTc=,order_id WC05,stage d29yaw==,title bW9ub3BvbHk="
    with server.client(token=made.json()["upload"]["token"]) as uploader:
        reply = create(uploader, **{"Upload-Length": "10", "Upload-Metadata": metadata})
    assert reply.status_code == 201, reply.text
    with server.client() as api:
        video = api.get(f"/api/v1/videos/{uid}").json()
        in_orders = api.get("/api/v1/videos", params={"order_id": "X-9"}).json()
    assert video["meta"] == {
        "title": "monopoly",
        "viewer_id": "u7",
        "order_id": "X-9",
        "stage": "work",
    }
    assert video.get("order_id") is None and video.get("stage") is None
    assert uid not in {v["uid"] for v in in_orders["videos"]}
