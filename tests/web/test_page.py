"""The console page over HTTP: what it loads, its headers, its static files, missing libraries."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import httpx
import pytest

from reelout.app import prepare
from reelout.auth.service import authenticate
from reelout.auth.session_cookies import SessionCodec, csrf_matches
from reelout.clock import ManualClock
from reelout.web.pages import LIBRARIES, VENDOR_DIR, libraries
from tests.support.live import StartLive
from tests.support.settings import ADMIN_TOKEN, make_settings, start_runtime


class Serve(Protocol):
    def __call__(self, vendor_dir: Path = ...) -> httpx.Client: ...


@pytest.fixture
def serve(live_servers: StartLive) -> Iterator[Serve]:
    """`serve(vendor_dir)`: a live server whose console looks for its libraries there."""
    clients: list[httpx.Client] = []

    def start(vendor_dir: Path = VENDOR_DIR) -> httpx.Client:
        live = live_servers(state={"console_vendor_dir": vendor_dir})
        client = httpx.Client(base_url=live.url, timeout=10, follow_redirects=True)
        reply = client.post("/console/login", data={"key": ADMIN_TOKEN})
        assert reply.status_code == 200, reply.text  # followed to the console page
        clients.append(client)
        return client

    yield start
    for client in clients:
        client.close()


def test_the_page_loads_the_installed_libraries_and_its_own_script(
    serve: Serve, tmp_path: Path
) -> None:
    vendor = tmp_path / "vendor"
    vendor.mkdir()
    for lib in LIBRARIES:
        (vendor / lib.file).write_text("/* stand-in */")
    web = serve(vendor)
    page = web.get("/console")
    assert page.status_code == 200
    for lib in LIBRARIES:  # the upload page has no charts
        loaded = f"/console/static/vendor/{lib.file}?v=" in page.text
        assert loaded == (lib.pages != "charts"), lib
    assert "/console/static/console.js?v=" in page.text
    assert "/console/static/player.js?v=" in page.text  # the player a video's page shares
    assert 'id="libs-missing"' not in page.text
    for path in ("flags", "tus", "direct", "legacy"):
        assert f'<option value="{path}">' in page.text
    for stage in ("inbound", "work", "outbound"):
        assert f'<option value="{stage}">' in page.text
    headers = page.headers
    assert headers["cache-control"] == "no-store"
    assert "script-src 'self'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"


def test_missing_libraries_are_named_with_how_to_install_them(serve: Serve, tmp_path: Path) -> None:
    web = serve(tmp_path / "empty")
    page = web.get("/console")
    assert page.status_code == 200
    assert 'id="libs-missing"' in page.text
    assert "<code>tus-js-client</code>" in page.text and "<code>hls.js</code>" in page.text
    assert "<code>make web</code>" in page.text
    assert "/static/vendor/" not in page.text
    assert "/console/static/console.js?v=" in page.text


def test_static_files_are_served(serve: Serve) -> None:
    web = serve()
    script = web.get("/console/static/console.js")
    style = web.get("/console/static/console.css")
    missing = web.get("/console/static/nope.js")
    assert script.status_code == 200
    assert "javascript" in script.headers["content-type"]
    assert "Using TUS Protocol" in script.text
    assert style.status_code == 200
    assert missing.status_code == 404


def test_libraries_splits_installed_from_missing(tmp_path: Path) -> None:
    assert libraries(tmp_path) == ([], list(LIBRARIES))
    (tmp_path / LIBRARIES[1].file).write_text("x")
    assert libraries(tmp_path) == (
        [LIBRARIES[1]],
        [lib for lib in LIBRARIES if lib != LIBRARIES[1]],
    )


def test_session_cookies_round_trip_and_resist_tampering(tmp_path: Path) -> None:
    rt = start_runtime(make_settings(tmp_path))
    prepare(rt)
    with rt.db.read() as db:
        key_id = authenticate(db, ADMIN_TOKEN).key_id
    codec = SessionCodec("k" * 40, ManualClock(), 60, rt.db)
    value, session = codec.issue(key_id)
    assert codec.read(value) == session
    # a character inside the signature: the last one carries padding bits, where a change can
    # decode to the same bytes
    flipped = "A" if value[-5] != "A" else "B"
    assert codec.read(value[:-5] + flipped + value[-4:]) is None
    assert codec.read("") is None and codec.read(None) is None
    assert SessionCodec("other" * 8, ManualClock(), 60, rt.db).read(value) is None
    assert csrf_matches(session, session.csrf)
    assert not csrf_matches(session, "")
    assert not csrf_matches(session, None)
    other, _ = codec.issue(key_id)
    assert codec.read(other) != session  # every login gets its own secret and CSRF token
    rt.db.dispose()
