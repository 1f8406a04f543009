"""The uploader library against the live server: stored bytes, order stages, resume rules, errors."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from reelout.client import Progress, UploadResult, upload
from reelout.client.state import FileFingerprint, UrlStore
from reelout.uploads.models import Upload
from tests.client.conftest import MakeSource, MiB, Source, assert_stored, video, write_source
from tests.support.live import LiveServer, free_port
from tests.support.settings import ADMIN_TOKEN

CHUNK = 256 * 1024


def send(server: LiveServer, *sources: Source, **options: Any) -> list[UploadResult]:
    opts: dict[str, Any] = {"server": server.url, "key": ADMIN_TOKEN, "chunk_size": CHUNK}
    opts.update(options)
    return upload([s.path for s in sources], **opts)


def interrupt_at(offset: int) -> Callable[[Progress], None]:
    """A progress hook that stops the upload like Ctrl-C once the server confirmed `offset`."""

    def hook(event: Progress) -> None:
        if event.offset >= offset:
            raise KeyboardInterrupt

    return hook


def test_upload_stores_the_exact_bytes(
    live_server: LiveServer, make_source: MakeSource, state: Path
) -> None:
    src = make_source()
    events: list[Progress] = []
    [res] = send(live_server, src, progress=events.append)
    assert res.ok, res.error
    assert (res.size, res.sha256, res.verified) == (src.size, src.sha256, True)
    assert (res.resumed_from, res.retries, res.error) == (0, 0, None)
    assert_stored(live_server, res.video_uid, res.upload_url, src)
    assert video(live_server, res.video_uid)["meta"] == {
        "filename": "clip.mp4",
        "filetype": "video/mp4",
    }
    confirmed = sorted({e.offset for e in events if e.state == "uploading"})
    assert confirmed == [*range(0, src.size, CHUNK), src.size]  # one PATCH per chunk
    assert max(e.sending for e in events) == CHUNK
    assert events[-1].state == "done"
    assert json.loads(state.read_text()) == {}  # a finished upload is forgotten


def test_empty_file(live_server: LiveServer, make_source: MakeSource, state: Path) -> None:
    src = make_source("empty.mp4", 0)
    [res] = send(live_server, src)
    assert res.ok, res.error
    assert res.sha256 == hashlib.sha256(b"").hexdigest()
    assert_stored(live_server, res.video_uid, res.upload_url, src)


def test_order_stage_upload_goes_through_the_one_time_token(
    live_server: LiveServer, make_source: MakeSource, state: Path
) -> None:
    src = make_source()
    [res] = send(live_server, src, order="order-42", stage="inbound")
    assert res.ok, res.error
    assert_stored(live_server, res.video_uid, res.upload_url, src)
    with live_server.client() as api:
        listed = api.get("/api/v1/orders/order-42/inbound/videos").json()["videos"]
    assert [(v["uid"], v["stage"], v["order_id"]) for v in listed] == [
        (res.video_uid, "inbound", "order-42")
    ]
    with live_server.runtime.db.session() as session:
        [row] = session.scalars(select(Upload)).all()
        assert row.created_by == f"video:{res.video_uid}"  # made with the token, not the key


def test_parallel_files(live_server: LiveServer, make_source: MakeSource, state: Path) -> None:
    sources = [make_source(f"clip-{i}.mov", (i + 1) * MiB + i) for i in range(3)]
    results = send(live_server, *sources, parallel=3)
    assert [r.path for r in results] == [s.path for s in sources]
    assert all(r.ok for r in results), [r.error for r in results]
    assert len({r.video_uid for r in results}) == 3
    for res, src in zip(results, sources, strict=True):
        assert_stored(live_server, res.video_uid, res.upload_url, src)


def test_interrupted_upload_resumes_from_the_stored_url(
    live_server: LiveServer, make_source: MakeSource, state: Path
) -> None:
    src = make_source()
    with pytest.raises(KeyboardInterrupt):
        send(live_server, src, progress=interrupt_at(2 * CHUNK))
    [stored_url] = UrlStore(state).items().values()
    [res] = send(live_server, src)
    assert res.ok, res.error
    assert (res.resumed_from, res.upload_url) == (2 * CHUNK, stored_url)
    assert_stored(live_server, res.video_uid, res.upload_url, src)
    assert UrlStore(state).items() == {}


def test_an_interrupted_order_upload_resumes_into_the_same_video(
    live_server: LiveServer, make_source: MakeSource, state: Path
) -> None:
    src = make_source()
    with pytest.raises(KeyboardInterrupt):
        send(live_server, src, order="o-9", stage="work", progress=interrupt_at(CHUNK))
    [res] = send(live_server, src, order="o-9", stage="work")
    assert res.ok, res.error
    assert res.resumed_from == CHUNK
    with live_server.client() as api:
        listed = api.get("/api/v1/orders/o-9/work/videos").json()["videos"]
    assert [v["uid"] for v in listed] == [res.video_uid]  # no second link was asked for
    assert_stored(live_server, res.video_uid, res.upload_url, src)


def test_a_crash_after_the_last_chunk_is_reported_as_done(
    live_server: LiveServer, make_source: MakeSource, state: Path
) -> None:
    src = make_source()
    with pytest.raises(KeyboardInterrupt):
        send(live_server, src, progress=interrupt_at(src.size))
    [res] = send(live_server, src)
    assert res.ok, res.error
    assert (res.resumed_from, res.verified) == (src.size, True)
    assert_stored(live_server, res.video_uid, res.upload_url, src)


def test_a_changed_file_never_resumes_a_stale_upload(
    live_server: LiveServer, make_source: MakeSource, state: Path
) -> None:
    src = make_source()
    with pytest.raises(KeyboardInterrupt):
        send(live_server, src, progress=interrupt_at(CHUNK))
    [stale_url] = UrlStore(state).items().values()
    changed = write_source(src.path, src.size)  # same name and size, new bytes
    [res] = send(live_server, changed)
    assert res.ok, res.error
    assert res.resumed_from == 0
    assert res.upload_url != stale_url
    assert_stored(live_server, res.video_uid, res.upload_url, changed)


def test_an_upload_gone_from_the_server_starts_over(
    live_server: LiveServer, make_source: MakeSource, state: Path
) -> None:
    src = make_source()
    with pytest.raises(KeyboardInterrupt):
        send(live_server, src, progress=interrupt_at(CHUNK))
    [stored_url] = UrlStore(state).items().values()
    with live_server.client() as api:
        assert api.delete(stored_url, headers={"Tus-Resumable": "1.0.0"}).status_code == 204
    [res] = send(live_server, src)
    assert res.ok, res.error
    assert res.resumed_from == 0
    assert res.upload_url != stored_url
    assert_stored(live_server, res.video_uid, res.upload_url, src)


def test_fingerprint_covers_place_size_mtime_and_content(tmp_path: Path) -> None:
    path = tmp_path / "a.mp4"
    path.write_bytes(b"x" * 200_000)

    def key(scope: str = "http://s|o|inbound") -> str:
        with path.open("rb") as fh:
            return FileFingerprint(scope).get_fingerprint(fh)

    first = key()
    assert key() == first
    assert key("http://s|o|work") != first
    assert key("http://other|o|inbound") != first
    os.utime(path, ns=(1, 1))
    touched = key()
    assert touched != first
    with path.open("r+b") as fh:
        fh.seek(199_999)
        fh.write(b"y")  # a change in the tail only
    os.utime(path, ns=(1, 1))
    assert key() != touched


def test_bad_key_fails_at_once_with_a_hint(
    live_server: LiveServer, make_source: MakeSource, state: Path
) -> None:
    [res] = send(live_server, make_source(), key="rlo_admin_wrong")
    assert not res.ok
    assert (res.status, res.retries) == (401, 0)
    assert "INVALID_KEY" in (res.error or "")
    assert "--key / REELOUT_KEY" in (res.hint or "")


def test_unreachable_server_is_retried_then_explained(make_source: MakeSource, state: Path) -> None:
    src = make_source(size=1000)
    [res] = upload(
        [src.path],
        server=f"http://127.0.0.1:{free_port()}",
        key=ADMIN_TOKEN,
        retries=3,
        retry_delay=0.01,
    )
    assert not res.ok
    assert (res.status, res.retries) == (None, 3)
    assert "cannot reach the server" in (res.error or "")
    assert "--server / REELOUT_URL" in (res.hint or "")


def test_missing_file_and_bad_arguments(tmp_path: Path, state: Path) -> None:
    [res] = upload([tmp_path / "nope.mp4"], server="http://127.0.0.1:9", key="k")
    assert not res.ok
    assert "cannot read" in (res.error or "")
    with pytest.raises(ValueError, match="order and stage"):
        upload([], server="http://x", key="k", stage="inbound")
    with pytest.raises(ValueError, match="order and stage"):
        upload([], server="http://x", key="k", order="o", stage="shipping")
