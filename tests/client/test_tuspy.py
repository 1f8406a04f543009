"""tuspy, the third-party Python tus client, used as shipped: chunked, interrupted, resumed."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
from tusclient.client import TusClient
from tusclient.storage.filestorage import FileStorage
from tusclient.uploader.uploader import Uploader

from tests.client.conftest import MakeSource, MiB, Source, assert_stored
from tests.support.live import LiveServer
from tests.support.settings import ADMIN_TOKEN

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
CHUNK = 256 * 1024


def video_uid(url: str) -> str:
    head = httpx.head(url, headers={**AUTH, "Tus-Resumable": "1.0.0"}, timeout=10)
    assert head.status_code == 200
    return head.headers["Reelout-Video-Id"]


def stock_uploader(server: LiveServer, src: Source, storage: FileStorage) -> Uploader:
    return TusClient(server.files_url, headers=dict(AUTH)).uploader(
        str(src.path),
        chunk_size=CHUNK,
        store_url=True,
        url_storage=storage,
        upload_checksum=True,
        metadata={"filename": src.path.name},
    )


def test_tuspy_chunked_upload_interrupted_and_resumed(
    live_server: LiveServer, make_source: MakeSource, tmp_path: Path
) -> None:
    src = make_source(size=3 * MiB + 5)
    storage = FileStorage(str(tmp_path / "tuspy-urls.json"))
    first = stock_uploader(live_server, src, storage)
    first.upload(stop_at=MiB)  # stop after four chunks, as an interrupted run would
    assert first.offset == MiB
    second = stock_uploader(live_server, src, storage)  # a new run finds the URL by fingerprint
    assert (second.url, second.offset) == (first.url, MiB)
    second.upload()
    assert second.offset == src.size
    storage.close()
    assert_stored(live_server, video_uid(second.url), second.url, src)


def test_tuspy_async_uploader_with_a_chunk_size(
    live_server: LiveServer, make_source: MakeSource
) -> None:
    src = make_source(size=MiB + 3)
    up = TusClient(live_server.files_url, headers=dict(AUTH)).async_uploader(
        str(src.path), chunk_size=CHUNK, upload_checksum=True
    )
    asyncio.run(up.upload())
    assert up.offset == src.size
    assert_stored(live_server, video_uid(up.url), up.url, src)
