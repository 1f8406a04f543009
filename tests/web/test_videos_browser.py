"""The Videos pages in Debian's Chromium: filter the list, open a video, play it, switch its
rendition, delete one with the confirmation; both pages fit a 390 px wide screen."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Dialog

from tests.support.live import LiveServer
from tests.web.conftest import Clips, Console, open_console
from tests.web.test_video_pages import Videos, settled, upload

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("console-browser")]


@pytest.fixture(scope="module")
def videos(server: LiveServer, clips: Clips) -> Videos:
    with server.client() as api:
        good = upload(api, "VB-1", "work", clips("landscape").read_bytes(), "Harbour_Crane.mp4")
        bad = upload(api, "VB-2", "inbound", b"a shopping list", "list.mp4")
        return {"ready": settled(api, good), "error": settled(api, bad)}


@pytest.fixture
def console(browser: Browser, server: LiveServer) -> Iterator[Console]:
    page = open_console(browser, server.url)
    yield page
    page.context.close()


def shown(console: Console) -> list[str]:
    uids: list[str] = console.page.eval_on_selector_all(
        "#videos tbody tr[data-uid]", "(rows) => rows.map((row) => row.dataset.uid)"
    )
    return uids


def test_more_adds_the_next_page_in_place(
    console: Console, videos: Videos, server: LiveServer
) -> None:
    page = console.page
    page.goto(server.url + "/console/videos?limit=1")
    assert shown(console) == [videos["error"]["uid"]]
    page.click("#more")
    console.wait("document.querySelectorAll('#videos tr[data-uid]').length === 2")
    assert shown(console) == [videos["error"]["uid"], videos["ready"]["uid"]]
    assert page.url == server.url + "/console/videos?limit=1"
    assert page.locator("#more").count() == 0


def test_filter_open_play_and_switch_rendition(console: Console, videos: Videos) -> None:
    page, good = console.page, videos["ready"]
    page.click("nav >> text=Videos")
    page.wait_for_url("**/console/videos")
    assert shown(console) == [videos["error"]["uid"], good["uid"]]
    page.select_option("#f-state", "ready")
    page.fill("#f-search", "harbour")
    page.click("#filter")
    page.wait_for_url("**/console/videos?*state=ready*")
    assert "search=harbour" in page.url
    assert shown(console) == [good["uid"]]
    page.click(f"#videos a[href$='{good['uid']}']")
    page.wait_for_url(f"**/console/videos/{good['uid']}")
    console.wait("document.body.dataset.ready === 'true'")
    console.wait("$('player').currentTime > 0.2", timeout=30_000)
    assert page.evaluate("() => window.reelout.playerMode") == "hls.js"
    console.wait("!$('rendition').disabled")
    labels = page.locator("#rendition option").all_text_contents()
    heights = sorted(r["height"] for r in good["renditions"])
    assert sorted(int(label.split("p")[0]) for label in labels[1:]) == heights
    top = f"{heights[-1]}p"  # away from the lowest rung, where the player starts
    index = next(i for i, label in enumerate(labels[1:]) if label.startswith(top))
    page.select_option("#rendition", str(index))
    console.wait(f"$('player-mode').textContent.includes('{top} now')")
    assert page.evaluate("() => window.reelout.hls.currentLevel") == index
    assert not [e for e in page.evaluate("() => window.reelout.hlsErrors") if e["fatal"]]
    assert not [line for line in console.logs if "PAGE ERROR" in line]


def test_copy_a_signed_url_and_delete_with_confirmation(
    console: Console, videos: Videos, server: LiveServer
) -> None:
    page, good = console.page, videos["ready"]
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.goto(f"{server.url}/console/videos/{good['uid']}")
    page.click("#sign")
    page.click("#copy-url")
    console.wait("$('copy-url').dataset.copied === 'yes'")
    copied = page.evaluate("() => navigator.clipboard.readText()")
    assert copied.startswith(good["playback"]["hls"] + "?token=")
    page.click("#reprocess")
    console.wait("['queued', 'processing'].includes($('video-state').dataset.state)")
    page.click("#reprocess")  # while the first one runs: refused, in words, in place
    console.wait("$('reprocess-error').textContent.includes('VIDEO_BUSY')")
    console.wait("$('video-state').dataset.state === 'ready'", timeout=120_000)  # polled

    bad = videos["error"]["uid"]
    page.goto(f"{server.url}/console/videos/{bad}")
    asked: list[str] = []

    def answer(dialog: Dialog) -> None:
        asked.append(dialog.message)
        dialog.dismiss() if len(asked) == 1 else dialog.accept()

    page.on("dialog", answer)
    page.click("#delete")  # dismissed: nothing happens
    page.click("#delete")
    page.wait_for_url(f"**/console/videos?deleted={bad}")
    assert len(asked) == 2 and bad in asked[0]
    assert f"Deleted video {bad}" in console.text("main")
    assert bad not in shown(console)


def test_the_videos_pages_fit_a_phone(console: Console, videos: Videos, server: LiveServer) -> None:
    page = console.page
    page.set_viewport_size({"width": 390, "height": 844})
    for path in ("/console/videos", f"/console/videos/{videos['ready']['uid']}"):
        page.goto(server.url + path)
        width = page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= 390, f"{path} is {width} px wide"
