"""Periodic housekeeping through a real embedded worker: the upload reaper and the job pruner."""

from __future__ import annotations

from pathlib import Path

import pytest

from reelout.clock import ManualClock
from reelout.jobs import service
from reelout.jobs.models import Job
from reelout.uploads.s3store import S3UploadStore
from tests.support.live import serving
from tests.support.settings import make_settings, start_runtime
from tests.support.waiting import wait_until

T = {"Tus-Resumable": "1.0.0"}


@pytest.mark.both_stores
def test_serve_reaps_expired_uploads_on_its_own(tmp_path: Path, storage: str | None) -> None:
    """On object storage the reaper aborts the upload's multipart upload too."""
    settings = make_settings(
        tmp_path,
        storage_url=storage,
        embedded_worker=True,
        reaper_interval_seconds=1,
        tus_expiration_seconds=1,
        job_poll_seconds=0.1,
    )
    with serving(settings) as server, server.client() as client:
        url = client.post("/files/", headers={**T, "Upload-Length": "10"}).headers["Location"]
        upload_id = url.rsplit("/", 1)[-1]
        store = server.runtime.upload_store
        wait_until(lambda: not store.exists(upload_id), 15, "the reaper to remove the upload")
        assert client.head(url, headers=T).status_code == 404
        if isinstance(store, S3UploadStore):
            bucket = store.bucket
            assert bucket.client.list_multipart_uploads(Bucket=bucket.name).get("Uploads") is None


def test_finished_jobs_are_pruned_after_the_retention(tmp_path: Path, database_url: str) -> None:
    clock = ManualClock()
    rt = start_runtime(make_settings(tmp_path, database_url=database_url), clock)
    with rt.db.session() as session:
        old = service.enqueue(session, clock, "x", {})
        queued = service.enqueue(session, clock, "y", {})
    claimed = service.claim(rt.db, clock, "w", 60, kinds=["x"])
    assert claimed is not None
    assert service.complete(rt.db, clock, old, "w")
    clock.advance(3 * 86400)
    assert service.prune_finished(rt.db, clock, 7 * 86400) == 0
    clock.advance(5 * 86400)
    assert service.prune_finished(rt.db, clock, 7 * 86400) == 1
    with rt.db.read() as session:
        assert [job.id for job in session.query(Job)] == [queued]
