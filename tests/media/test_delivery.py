"""Serving published media like a CDN origin: cache rules, ETag, Range, CORS per video,
capped masters, atomic publishing, re-encoding and deletion (checks 17 and 18)."""

from __future__ import annotations

from pathlib import Path

import httpx
import m3u8
import pytest

from reelout.clock import ManualClock
from tests.media.clips import Clips
from tests.media.test_pipeline import upload
from tests.support.jobs import run_jobs
from tests.support.live import LiveServer, live_server_fixture
from tests.support.stores import stored_names

GRACE = 3600


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


server = live_server_fixture(manual_clock=True, media_version_grace_seconds=GRACE)


def ready_video(server: LiveServer, clip: Path) -> dict[str, object]:
    with server.client() as api:
        uid = upload(api, clip)
        run_jobs(server.runtime)
        video: dict[str, object] = api.get(f"/api/v1/videos/{uid}").json()
    assert video["ready_to_stream"] is True
    return video


def urls(video: dict[str, object]) -> dict[str, str]:
    playback = video["playback"]
    assert isinstance(playback, dict)
    master = playback["hls"]
    media = master.rsplit("/", 1)[0]
    return {
        "master": master,
        "media_playlist": f"{media}/240p/index.m3u8",
        "segment": f"{media}/240p/seg_00000.m4s",
        "mp4": playback["mp4"],
        "poster": str(video["thumbnail"]),
    }


@pytest.mark.both_stores
def test_each_kind_of_file_has_its_type_and_cache_lifetime(
    server: LiveServer, clips: Clips
) -> None:
    where = urls(ready_video(server, clips("tiny")))
    where["media_playlist"] = where["media_playlist"].replace("240p", "180p")
    where["segment"] = where["segment"].replace("240p", "180p")
    expected = {
        "master": ("application/vnd.apple.mpegurl", "public, max-age=60"),
        "media_playlist": ("application/vnd.apple.mpegurl", "public, max-age=31536000, immutable"),
        "segment": ("video/iso.segment", "public, max-age=31536000, immutable"),
        "mp4": ("video/mp4", "public, max-age=31536000, immutable"),
        "poster": ("image/jpeg", "public, max-age=86400"),
    }
    with httpx.Client() as http:
        for name, (content_type, cache) in expected.items():
            reply = http.get(where[name])
            assert reply.status_code == 200, name
            assert reply.headers["content-type"].split(";")[0] == content_type, name
            assert reply.headers["cache-control"] == cache, name
            assert reply.headers["etag"].startswith('"'), name


@pytest.mark.both_stores
def test_etag_revalidation_and_ranges(server: LiveServer, clips: Clips) -> None:
    mp4 = urls(ready_video(server, clips("tiny")))["mp4"]
    with httpx.Client() as http:
        whole = http.get(mp4)
        etag = whole.headers["etag"]
        again = http.get(mp4, headers={"If-None-Match": etag})
        assert (again.status_code, again.content) == (304, b"")
        assert again.headers["etag"] == etag
        assert http.get(mp4, headers={"If-None-Match": '"other"'}).status_code == 200
        part = http.get(mp4, headers={"Range": "bytes=100-199"})
        assert part.status_code == 206
        assert part.headers["content-range"] == f"bytes 100-199/{len(whole.content)}"
        assert part.content == whole.content[100:200]
        assert whole.headers["accept-ranges"] == "bytes"


@pytest.mark.both_stores
def test_cors_follows_the_videos_allowed_origins(server: LiveServer, clips: Clips) -> None:
    video = ready_video(server, clips("tiny"))
    master = urls(video)["master"]
    app, other = "https://app.example.com", "https://evil.example.net"
    with httpx.Client() as http:
        assert (
            http.get(master, headers={"Origin": other}).headers["access-control-allow-origin"]
            == "*"
        )
        with server.client() as api:
            changed = api.patch(f"/api/v1/videos/{video['uid']}", json={"allowed_origins": [app]})
            assert changed.status_code == 200
            assert changed.json()["allowed_origins"] == [app]
        allowed = http.get(master, headers={"Origin": app})
        assert allowed.headers["access-control-allow-origin"] == app
        assert "Origin" in allowed.headers["vary"]
        refused = http.get(master, headers={"Origin": other})
        assert "access-control-allow-origin" not in refused.headers
        preflight = http.options(
            master, headers={"Origin": app, "Access-Control-Request-Method": "GET"}
        )
        assert preflight.headers["access-control-allow-origin"] == app


def test_origins_must_be_origins(server: LiveServer, clips: Clips) -> None:
    video = ready_video(server, clips("tiny"))
    with server.client() as api:
        reply = api.patch(
            f"/api/v1/videos/{video['uid']}", json={"allowed_origins": ["https://x.com/path"]}
        )
        assert reply.status_code == 400
        assert reply.json()["code"] == "INVALID_ORIGIN"
        assert api.get(f"/api/v1/videos/{video['uid']}").json()["allowed_origins"] == []


@pytest.mark.both_stores
def test_a_capped_master_lists_only_rungs_up_to_the_cap(server: LiveServer, clips: Clips) -> None:
    master = urls(ready_video(server, clips("p720")))["master"]
    with httpx.Client() as http:
        full = m3u8.loads(http.get(master).text)
        capped_reply = http.get(master, params={"max_height": 360})
        capped = m3u8.loads(capped_reply.text)
        assert capped_reply.headers["etag"] != http.get(master).headers["etag"]
        assert http.get(master, params={"max_height": 0}).status_code == 422
    heights = sorted(p.stream_info.resolution[1] for p in full.playlists)
    assert heights == [240, 360, 480, 720]
    assert sorted(p.stream_info.resolution[1] for p in capped.playlists) == [240, 360]


@pytest.mark.both_stores
def test_nothing_is_served_before_ready_and_nothing_is_left_after_delete(
    server: LiveServer, clips: Clips
) -> None:
    with server.client() as api:
        uid = upload(api, clips("tiny"))
        assert (
            httpx.get(f"{server.url}/media/{uid}/v-0000000000000000/master.m3u8").status_code == 404
        )
        run_jobs(server.runtime)
        video = api.get(f"/api/v1/videos/{uid}").json()
        master = video["playback"]["hls"]
        assert httpx.get(master).status_code == 200
        assert api.delete(f"/api/v1/videos/{uid}").status_code == 204
    assert httpx.get(master).status_code == 404
    assert stored_names(server.runtime, uid) == []
    assert not (server.runtime.settings.data_dir / "media" / uid).exists()


@pytest.mark.both_stores
def test_a_reencode_publishes_a_new_version_while_the_old_one_plays(
    server: LiveServer, clips: Clips, clock: ManualClock
) -> None:
    video = ready_video(server, clips("tiny"))
    old = urls(video)["master"]
    with server.client() as api:
        again = api.post(f"/api/v1/videos/{video['uid']}/reprocess")
        assert again.status_code == 202
        assert again.json()["status"]["state"] == "queued"
        assert again.json()["playback"]["hls"] == old, "the old version plays meanwhile"
        busy = api.post(f"/api/v1/videos/{video['uid']}/reprocess")
        assert (busy.status_code, busy.json()["code"]) == (409, "VIDEO_BUSY")
        run_jobs(server.runtime)
        new = api.get(f"/api/v1/videos/{video['uid']}").json()
        assert new["status"]["state"] == "ready"
        assert new["playback"]["hls"] != old
        assert httpx.get(old).status_code == 200, "kept for its grace period"
        clock.advance(GRACE + 1)
        run_jobs(server.runtime)  # the purge job is due now
    assert httpx.get(old).status_code == 404
    assert httpx.get(new["playback"]["hls"]).status_code == 200
    old_version = old.split("/")[-2]
    assert not [n for n in stored_names(server.runtime, video["uid"]) if old_version in n]  # type: ignore[arg-type]


def test_the_playback_api_gives_a_player_everything_to_start(
    server: LiveServer, clips: Clips
) -> None:
    video = ready_video(server, clips("p720"))
    with server.client() as admin:
        app_key = admin.post(
            "/api/v1/keys", json={"scope": "client", "environment": "production", "name": "app"}
        ).json()["key"]
    with server.client(token=app_key) as app:
        reply = app.get(f"/api/v1/videos/{video['uid']}/playback", params={"network": "slow"})
        assert reply.status_code == 200
        info = reply.json()
        assert info["recommended_max_height"] == 360
        assert info["hls_capped"] == info["hls"] + "?max_height=360"
        assert (info["mp4"], info["poster"]) == (video["playback"]["mp4"], video["thumbnail"])  # type: ignore[index]
        assert [r["name"] for r in info["renditions"]] == ["240p", "360p", "480p", "720p"]
        capped = m3u8.loads(httpx.get(info["hls_capped"]).text)
        assert max(p.stream_info.resolution[1] for p in capped.playlists) == 360
        fast = app.get(
            f"/api/v1/videos/{video['uid']}/playback",
            params={"network": "wifi", "downlink_kbps": 50_000},
        ).json()
        assert fast["recommended_max_height"] == 720
        bad = app.get(f"/api/v1/videos/{video['uid']}/playback", params={"network": "5g"})
        assert bad.status_code == 422


def test_playback_before_ready_says_so(server: LiveServer, clips: Clips) -> None:
    with server.client() as api:
        uid = upload(api, clips("tiny"))
        reply = api.get(f"/api/v1/videos/{uid}/playback")
    assert reply.status_code == 409
    assert reply.json()["code"] == "VIDEO_NOT_READY"
    assert reply.json()["details"] == {"state": "queued"}
    assert httpx.get(f"{server.url}/api/v1/videos/{uid}/playback").status_code == 401


@pytest.mark.both_stores
def test_a_video_that_requires_signed_urls_plays_only_with_a_token(
    server: LiveServer, clips: Clips, clock: ManualClock
) -> None:
    video = ready_video(server, clips("tiny"))
    uid, master = video["uid"], urls(video)["master"]
    with server.client() as api:
        api.patch(f"/api/v1/videos/{uid}", json={"require_signed_urls": True})
        signed = api.post(f"/api/v1/videos/{uid}/token").json()
        too_long = api.post(f"/api/v1/videos/{uid}/token", json={"expires_in": 10**6})
        assert (too_long.status_code, too_long.json()["code"]) == (400, "TOKEN_TTL_TOO_LONG")
        via_api = api.get(f"/api/v1/videos/{uid}/playback").json()
    token = signed["token"]
    assert signed["hls"] == f"{master}?token={token}"
    assert via_api["hls"].endswith(f"?token={token}"), "same bucket: the same token"
    with httpx.Client() as http:
        refused = http.get(master)
        assert (refused.status_code, refused.json()["code"]) == (401, "TOKEN_REQUIRED")
        forged = http.get(
            master, params={"token": token[:-1] + ("1" if token.endswith("0") else "0")}
        )
        assert (forged.status_code, forged.json()["code"]) == (403, "INVALID_TOKEN")
        top = m3u8.loads(http.get(signed["hls"]).text, uri=signed["hls"])
        media_url = top.playlists[0].absolute_uri
        assert media_url.endswith(f"?token={token}")
        media_reply = http.get(media_url)
        media = m3u8.loads(media_reply.text, uri=media_url)
        uris = [media.segment_map[0].absolute_uri] + [s.absolute_uri for s in media.segments]
        assert all(uri.endswith(f"?token={token}") for uri in uris)
        segment = http.get(uris[1])
        assert segment.status_code == 200
        assert http.get(uris[1].split("?")[0]).status_code == 401
        ages = [
            int(r.headers["cache-control"].split("max-age=")[1]) for r in (segment, media_reply)
        ]
        assert all(0 < age <= 3600 + 300 for age in ages), "cached copies die with the token"
        clock.advance(3600 + 300)
        expired = http.get(signed["hls"])
        assert (expired.status_code, expired.json()["code"]) == (403, "TOKEN_EXPIRED")
