"""The console's Videos pages over HTTP: the list's filters, search and paging, a video's page,
an unknown video in words, re-encode, delete and the signed playback URL (CSRF-checked)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from html import unescape
from typing import Any

import httpx
import pytest
from markupsafe import escape

from reelout.auth.session_cookies import CSRF_HEADER
from tests.support.live import LiveServer, live_server_fixture
from tests.support.waiting import wait_until
from tests.web.conftest import READY_TIMEOUT_MS, Clips
from tests.web.test_login import login
from tests.webhooks.conftest import LOOPBACK

server = live_server_fixture(
    scope="module",
    folder="video-pages",
    embedded_worker=True,
    job_poll_seconds=0.2,
    webhook_allow_networks=LOOPBACK,
)
Videos = dict[str, dict[str, Any]]


def upload(api: httpx.Client, order: str, stage: str, data: bytes, filename: str) -> str:
    headers = {"Content-Type": "video/mp4", "X-Filename": filename}
    reply = api.post(f"/api/v1/orders/{order}/{stage}/videos", content=data, headers=headers)
    assert reply.status_code == 201, reply.text
    uid: str = reply.json()["uid"]
    return uid


def settled(api: httpx.Client, uid: str) -> dict[str, Any]:
    """The video once it is ready or in error (the embedded worker processes it)."""

    def done() -> dict[str, Any] | None:
        body: dict[str, Any] = api.get(f"/api/v1/videos/{uid}").json()
        return body if body["status"]["state"] in ("ready", "error") else None

    found = wait_until(done, READY_TIMEOUT_MS / 1000, f"{uid} to settle", interval=0.2)
    assert found is not None
    return found


@pytest.fixture(scope="module")
def videos(server: LiveServer, clips: Clips) -> Videos:
    """A webhook endpoint (nobody listens: its deliveries fail), then a video that becomes ready
    and one that ends in error."""
    with server.client() as api:
        hook = api.post("/api/v1/webhooks", json={"url": "http://127.0.0.1:9/hook"})
        assert hook.status_code == 201, hook.text
        good = upload(api, "VP-1", "work", clips("landscape").read_bytes(), "Harbour_Crane.mp4")
        bad = upload(api, "VP-2", "inbound", b"a shopping list", "list.mp4")
        return {"ready": settled(api, good), "error": settled(api, bad)}


@pytest.fixture
def web(server: LiveServer) -> Iterator[tuple[httpx.Client, dict[str, str]]]:
    """A logged-in client and the headers an htmx action sends (cookie, CSRF token)."""
    with httpx.Client(base_url=server.url, timeout=10, follow_redirects=False) as client:
        cookie, csrf = login(client)
        client.headers.update(cookie)
        yield client, {CSRF_HEADER: csrf, "HX-Request": "true"}


def rows(html: str) -> list[str]:
    """The uids the list shows, in order."""
    return re.findall(r'<tr data-uid="([0-9a-f]+)">', html)


def listed(client: httpx.Client, **params: str) -> list[str]:
    reply = client.get("/console/videos", params=params)
    assert reply.status_code == 200, reply.text
    return rows(reply.text)


def test_the_list_filters_and_searches(
    web: tuple[httpx.Client, dict[str, str]], videos: Videos
) -> None:
    client, _ = web
    good, bad = videos["ready"]["uid"], videos["error"]["uid"]
    page = client.get("/console/videos")
    assert page.status_code == 200
    assert 'href="/console/videos" aria-current="page"' in page.text
    assert rows(page.text) == [bad, good]
    assert listed(client, state="error") == [bad]
    assert listed(client, state="ready", stage="work", order_id="VP-1") == [good]
    assert listed(client, stage="work", order_id="VP-2") == []
    assert listed(client, search="harbour_") == [good]
    assert listed(client, search=bad[:8]) == [bad]
    assert listed(client, created_before="2000-01-01") == []
    assert "No videos match." in client.get("/console/videos?state=queued").text
    today = videos["ready"]["created"][:10]
    assert listed(client, created_from=today, state="", stage="", search="") == [bad, good]
    chosen = client.get("/console/videos", params={"state": "error", "search": "list"})
    assert '<option value="error" selected>' in chosen.text
    assert 'name="search" value="list"' in chosen.text


def test_the_list_pages_with_the_filters_kept(
    web: tuple[httpx.Client, dict[str, str]], videos: Videos
) -> None:
    client, hx = web
    first = client.get("/console/videos", params={"order_id": "", "search": "", "limit": "1"})
    assert rows(first.text) == [videos["error"]["uid"]]
    more = re.search(r'<a id="more" href="([^"]+)" hx-get="([^"]+)"', first.text)
    assert more and more.group(1) == more.group(2)
    url = unescape(more.group(1))
    assert url.startswith("/console/videos?limit=1&cursor=")
    fragment = client.get(url, headers=hx)
    assert fragment.status_code == 200
    assert "<html" not in fragment.text and 'id="more"' not in fragment.text
    assert rows(fragment.text) == [videos["ready"]["uid"]]
    full = client.get(url)  # without JavaScript the link opens the next page
    assert rows(full.text) == [videos["ready"]["uid"]]
    assert "Back to the newest" in full.text
    filtered = client.get("/console/videos", params={"state": "error", "limit": "1"})
    assert 'id="more"' not in filtered.text


def test_a_bad_filter_is_said_in_words(web: tuple[httpx.Client, dict[str, str]]) -> None:
    client, _ = web
    for params in ({"state": "lost"}, {"created_from": "yesterday"}, {"limit": "0"}):
        reply = client.get("/console/videos", params=params)
        assert reply.status_code == 400, params
        assert "INVALID_FILTER" in reply.text and "That did not work" in reply.text
    cursor = client.get("/console/videos", params={"cursor": "%%%"})
    assert cursor.status_code == 400 and "INVALID_CURSOR" in cursor.text


def test_an_unknown_video_is_a_404_in_words(web: tuple[httpx.Client, dict[str, str]]) -> None:
    client, _ = web
    reply = client.get("/console/videos/" + "f" * 32)
    assert reply.status_code == 404
    assert "VIDEO_NOT_FOUND" in reply.text and "no video with uid" in reply.text


def test_a_ready_videos_page(web: tuple[httpx.Client, dict[str, str]], videos: Videos) -> None:
    client, _ = web
    video = videos["ready"]
    page = client.get(f"/console/videos/{video['uid']}")
    assert page.status_code == 200
    html = page.text
    assert '<script type="application/json" id="player-data">' in html
    assert video["playback"]["hls"] in html and f'poster="{video["thumbnail"]}"' in html
    assert "/console/static/player.js?v=" in html and "/console/static/video.js?v=" in html
    assert "/console/static/vendor/hls.min.js?v=" in html
    for rendition in video["renditions"]:
        size = f"<td>{rendition['width']}\u00d7{rendition['height']}</td>"
        kbits = f"<td>{round(rendition['bandwidth'] / 1000)}</td>"
        assert size + kbits in html, rendition
    history = html[html.index('id="history"') : html.index("Webhook deliveries")]
    assert re.findall(r'data-to="(\w+)"', history) == ["uploading", "queued", "processing", "ready"]
    assert "created: uploading" in history and "processing → ready" in history
    deliveries = html[html.index("Webhook deliveries") :]
    assert "<td>video.ready</td>" in deliveries and "video.error" not in deliveries
    assert "Harbour_Crane.mp4" in html and 'data-state="ready"' in html


def test_a_failed_videos_page_says_why(
    web: tuple[httpx.Client, dict[str, str]], videos: Videos
) -> None:
    client, hx = web
    video = videos["error"]
    html = client.get(f"/console/videos/{video['uid']}").text
    code, text = video["status"]["error_code"], video["status"]["error_text"]
    assert code and f"<strong>{code}</strong>" in html
    assert 'id="no-player"' in html and 'id="player-data"' not in html
    history = html[html.index('id="history"') : html.index("Webhook deliveries")]
    assert history.count(f"<strong>{code}</strong>") == 1
    assert re.findall(r'data-to="(\w+)"', history)[-1] == "error"
    assert f"<strong>{code}</strong>: {escape(text)}" in history
    assert "<td>video.error</td>" in html[html.index("Webhook deliveries") :]
    sign = client.post(f"/console/videos/{video['uid']}/token", headers=hx | {"HX-Trigger": "sign"})
    assert sign.status_code == 409 and sign.headers["hx-retarget"] == "#sign-error"
    assert "VIDEO_NOT_READY" in sign.text
    assert text


def test_a_signed_playback_url_to_copy(
    web: tuple[httpx.Client, dict[str, str]], videos: Videos
) -> None:
    client, hx = web
    uid = videos["ready"]["uid"]
    assert client.post(f"/console/videos/{uid}/token").status_code == 403  # no CSRF token
    reply = client.post(f"/console/videos/{uid}/token", headers=hx | {"HX-Trigger": "sign"})
    assert reply.status_code == 200, reply.text
    found = re.search(r'data-copy="([^"]+)"', reply.text)
    assert found
    url = unescape(found.group(1))
    assert url.startswith(videos["ready"]["playback"]["hls"] + "?token=")
    master = httpx.get(url, timeout=10)
    assert master.status_code == 200 and master.text.startswith("#EXTM3U")


def test_re_encode_queues_a_new_version_and_refuses_a_busy_video(
    server: LiveServer, web: tuple[httpx.Client, dict[str, str]], videos: Videos
) -> None:
    client, hx = web
    uid = videos["ready"]["uid"]
    action = hx | {"HX-Trigger": "reprocess"}
    assert client.post(f"/console/videos/{uid}/reprocess").status_code == 403
    first = client.post(f"/console/videos/{uid}/reprocess", headers=action)
    assert first.status_code == 200, first.text
    assert 'data-state="queued"' in first.text and 'hx-trigger="every 2s"' in first.text
    again = client.post(f"/console/videos/{uid}/reprocess", headers=action)
    assert again.status_code == 409 and again.headers["hx-retarget"] == "#reprocess-error"
    assert "VIDEO_BUSY" in again.text
    with server.client() as api:
        done = settled(api, uid)
    assert done["status"]["state"] == "ready"
    state = client.get(f"/console/videos/{uid}/state", headers=hx)
    assert 'data-state="ready"' in state.text and "every 2s" not in state.text
    html = client.get(f"/console/videos/{uid}").text
    assert html.count("<td>video.ready</td>") == 2, "a delivery for each version"
    history = html[html.index('id="history"') : html.index("Webhook deliveries")]
    again = ["ready", "queued", "processing", "ready"]
    assert re.findall(r'data-to="(\w+)"', history)[-4:] == again
    assert "re-encode requested" in history


def test_delete_removes_the_video_and_says_so(
    server: LiveServer, web: tuple[httpx.Client, dict[str, str]], videos: Videos
) -> None:
    client, hx = web
    with server.client() as api:
        uid = upload(api, "VP-3", "outbound", b"gone soon", "gone.mp4")
    action = hx | {"HX-Trigger": "delete"}
    assert client.delete(f"/console/videos/{uid}").status_code == 403
    reply = client.delete(f"/console/videos/{uid}", headers=action)
    assert reply.status_code == 204
    assert reply.headers["hx-redirect"] == f"/console/videos?deleted={uid}"
    with server.client() as api:
        assert api.get(f"/api/v1/videos/{uid}").status_code == 404
    notice = client.get(reply.headers["hx-redirect"]).text
    assert f"Deleted video <code>{uid}</code>" in notice and uid not in rows(notice)
    again = client.delete(f"/console/videos/{uid}", headers=action)
    assert again.status_code == 404 and again.headers["hx-retarget"] == "#delete-error"
    assert "VIDEO_NOT_FOUND" in again.text


def test_a_video_that_requires_signed_urls_plays_from_signed_ones(
    server: LiveServer, web: tuple[httpx.Client, dict[str, str]], videos: Videos
) -> None:
    client, _ = web
    uid = videos["ready"]["uid"]
    with server.client() as api:
        hls = settled(api, uid)["playback"]["hls"]  # now: another test may have re-encoded it
        assert api.patch(f"/api/v1/videos/{uid}", json={"require_signed_urls": True}).is_success
    try:
        html = client.get(f"/console/videos/{uid}").text
    finally:
        with server.client() as api:
            api.patch(f"/api/v1/videos/{uid}", json={"require_signed_urls": False})
    data = html[
        html.index('id="player-data">') : html.index("</script>", html.index("player-data"))
    ]
    signed = re.search(r'"hls": "([^"]+)"', data)
    assert signed and signed.group(1).startswith(hls + "?token=")
    assert '"thumbnail": "' in data and "poster.jpg?token=" in data
    assert httpx.get(signed.group(1), timeout=10).status_code == 200
