"""The video API: creator uploads, reading, filtering, pagination and deletion."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from reelout.clock import ManualClock
from tests.support.live import LiveServer, serving
from tests.support.settings import make_settings

DAY = 86400


def direct(
    api: httpx.Client, order: str, stage: str, data: bytes = b"video", filename: str = ""
) -> str:
    headers = {"Content-Type": "video/mp4"} | ({"X-Filename": filename} if filename else {})
    reply = api.post(f"/api/v1/orders/{order}/{stage}/videos", content=data, headers=headers)
    assert reply.status_code == 201
    uid: str = reply.json()["uid"]
    return uid


def test_creator_upload_link(live_server: LiveServer) -> None:
    with live_server.client() as api:
        reply = api.post("/api/v1/videos", json={"meta": {"title": "x"}, "expires_in": 600})
        assert reply.status_code == 201
        body = reply.json()
        assert body["upload"]["token"].startswith("rlo_upload_")
        assert body["upload"]["max_bytes"] == live_server.runtime.settings.tus_max_size
        video = api.get(f"/api/v1/videos/{body['uid']}").json()
        assert video["status"]["state"] == "uploading"
        assert video["meta"] == {"title": "x"}
        assert api.post("/api/v1/videos", json={"expires_in": 5}).status_code == 422


def test_list_filters_and_pages(live_server: LiveServer) -> None:
    with live_server.client() as api:
        uids = [direct(api, "P-1", "work") for _ in range(5)]
        direct(api, "P-2", "inbound")
        seen: list[str] = []
        cursor = None
        while True:
            params: dict[str, str | int] = {"order_id": "P-1", "limit": 2}
            if cursor:
                params["cursor"] = cursor
            page = api.get("/api/v1/videos", params=params).json()
            seen += [v["uid"] for v in page["videos"]]
            cursor = page["next_cursor"]
            if not cursor:
                break
        assert sorted(seen) == sorted(uids) and len(seen) == 5
        assert len(api.get("/api/v1/videos", params={"stage": "inbound"}).json()["videos"]) == 1
        assert api.get("/api/v1/videos", params={"cursor": "garbage!"}).json()["code"] == (
            "INVALID_CURSOR"
        )
        assert api.get("/api/v1/videos", params={"state": "nope"}).status_code == 422


def listed(api: httpx.Client, **params: str | int) -> list[str]:
    reply = api.get("/api/v1/videos", params=params)
    assert reply.status_code == 200, reply.text
    return [video["uid"] for video in reply.json()["videos"]]


def test_list_by_created_range_and_search(
    tmp_path: Path, clock: ManualClock, database_url: str
) -> None:
    """`created_from` is inclusive, `created_before` exclusive; `search` finds a uid by its
    start or a file name by any part of it, in any case, with LIKE's wildcards taken literally."""
    settings = make_settings(tmp_path, database_url=database_url)
    with serving(settings, clock) as server, server.client() as api:
        first = direct(api, "S-1", "work", filename="Harbour_Crane.MP4")
        clock.advance(DAY)
        second = direct(api, "S-1", "work", filename="100%_dock.mov")
        clock.advance(DAY)
        third = direct(api, "S-2", "inbound")
        assert listed(api, created_from="2026-01-02") == [third, second]
        assert listed(api, created_before="2026-01-02T00:00:00Z") == [first]
        assert listed(api, created_from="2026-01-02", created_before="2026-01-03") == [second]
        assert listed(api, created_from="2026-01-04") == []
        assert listed(api, search="harbour_c") == [first]
        assert listed(api, search="mp4") == [first]
        assert listed(api, search="100%") == [second]
        assert listed(api, search="_") == [second, first]
        assert listed(api, search="%") == [second]
        assert listed(api, search=third[:6].upper()) == [third]
        assert listed(api, search=second) == [second]
        assert listed(api, search="S-1", order_id="S-1") == []
        assert listed(api, search="dock", order_id="S-1", stage="work") == [second]
        assert listed(api, state="uploading") == []
        bad = api.get("/api/v1/videos", params={"created_from": "yesterday"})
        assert bad.status_code == 422


@pytest.mark.both_stores
def test_delete_removes_every_file(live_server: LiveServer) -> None:
    with live_server.client() as api:
        uid = direct(api, "D-1", "outbound")
        store = live_server.runtime.media_store
        assert store.has_original(uid)
        assert api.delete(f"/api/v1/videos/{uid}").status_code == 204
        assert not store.has_original(uid)
        assert api.get(f"/api/v1/videos/{uid}").status_code == 404
        assert api.delete(f"/api/v1/videos/{uid}").json()["code"] == "VIDEO_NOT_FOUND"


def test_creator_token_uploads_in_parallel_parts_once(live_server: LiveServer) -> None:
    tus = {"Tus-Resumable": "1.0.0"}
    octets = {**tus, "Content-Type": "application/offset+octet-stream", "Upload-Offset": "0"}
    with live_server.client() as api:
        link = api.post("/api/v1/videos", json={}).json()
    with live_server.client(token=link["upload"]["token"]) as phone:
        parts = []
        for text in (b"first ", b"second"):
            made = phone.post(
                "/files/",
                headers={**tus, "Upload-Concat": "partial", "Upload-Length": str(len(text))},
            )
            assert made.status_code == 201
            assert (
                phone.patch(made.headers["Location"], content=text, headers=octets).status_code
                == 204
            )
            parts.append(made.headers["Location"])
        final = phone.post("/files/", headers={**tus, "Upload-Concat": "final;" + " ".join(parts)})
        assert final.headers["Reelout-Video-Id"] == link["uid"]
        late = phone.post(
            "/files/", headers={**tus, "Upload-Concat": "partial", "Upload-Length": "1"}
        )
        assert (late.status_code, late.json()["code"]) == (401, "UPLOAD_TOKEN_USED")
    with live_server.client() as api:
        video = api.get(f"/api/v1/videos/{link['uid']}").json()
        assert video["size"] == 12
        assert video["status"]["state"] == "queued"


@pytest.mark.both_stores
def test_deleting_a_video_mid_upload_keeps_nothing(live_server: LiveServer) -> None:
    tus = {"Tus-Resumable": "1.0.0"}
    octets = {**tus, "Content-Type": "application/offset+octet-stream"}
    with live_server.client() as api:
        made = api.post("/files/", headers={**tus, "Upload-Length": "10"})
        url, uid = made.headers["Location"], made.headers["Reelout-Video-Id"]
        assert (
            api.patch(url, content=b"hello", headers={**octets, "Upload-Offset": "0"}).status_code
            == 204
        )
        assert api.delete(f"/api/v1/videos/{uid}").status_code == 204
        done = api.patch(url, content=b"world", headers={**octets, "Upload-Offset": "5"})
        assert done.status_code == 204
        assert not live_server.runtime.media_store.has_original(uid)
        assert not live_server.runtime.upload_store.exists(url.rsplit("/", 1)[-1])
        assert api.get(f"/api/v1/videos/{uid}").status_code == 404
