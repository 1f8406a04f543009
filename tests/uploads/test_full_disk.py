"""Full disks lose nothing and say so: real ENOSPC on a small tmpfs, real EFBIG under
RLIMIT_FSIZE, and the free-space reserve checked against the real disk on both sides."""

from __future__ import annotations

import base64
import hashlib
import os
import resource
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import reset_pg
from tests.support.live import LiveServer, StartServer, serving
from tests.support.settings import ADMIN_TOKEN, make_settings

MiB = 1024 * 1024
T = {"Tus-Resumable": "1.0.0"}
CT = {"Content-Type": "application/offset+octet-stream"}
STAGE = "/api/v1/orders/O-1/inbound/videos"
HUGE_RESERVE = 2**62  # more than any disk has free: every upload is refused


# -- a data folder on a small tmpfs: writes past it fail with a real ENOSPC -------------------
@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs as the data folder needs root")
    folder = tmp_path / "data"
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    yield folder
    subprocess.run(["umount", "-l", str(folder)], check=False)


@pytest.fixture
def server(tmp_path: Path, small_disk: Path) -> Iterator[LiveServer]:
    """Uploads and media on the small disk, the database beside it (so it never fills)."""
    settings = make_settings(
        tmp_path,
        data_dir=small_disk,
        database_url=f"sqlite:///{tmp_path / 'reelout.db'}",
        disk_reserve_bytes=0,
    )
    with serving(settings) as live:
        yield live


def fill(folder: Path, leave: int) -> Path:
    """Take the disk's free space down to about `leave` bytes with a real file."""
    filler = folder / "filler"
    block = b"\0" * MiB
    with filler.open("wb") as out:
        while (free := shutil.disk_usage(folder).free) > leave:
            out.write(block[: min(MiB, free - leave)])
            out.flush()
    return filler


def patch(
    client: httpx.Client, url: str, offset: int, body: bytes, **headers: str
) -> httpx.Response:
    return client.patch(
        url, content=body, headers={**T, **CT, "Upload-Offset": str(offset), **headers}
    )


def upload_file(server: LiveServer, url: str) -> Path:
    return server.runtime.settings.data_dir / "uploads" / url.rsplit("/", 1)[-1]


def test_a_patch_on_a_full_disk_keeps_whole_writes_and_resumes(
    server: LiveServer, small_disk: Path
) -> None:
    data = os.urandom(8 * MiB)
    with server.client() as api:
        made = api.post("/files/", headers={**T, "Upload-Length": str(len(data))})
        assert made.status_code == 201, made.text
        url = made.headers["Location"]
        filler = fill(small_disk, leave=3 * MiB)
        full = patch(api, url, 0, data)
        assert (full.status_code, full.json()["code"]) == (507, "INSUFFICIENT_STORAGE")
        kept = int(full.headers["Upload-Offset"])
        assert 0 < kept < 3 * MiB
        assert upload_file(server, url).stat().st_size == kept, "no partial write is kept"
        assert int(api.head(url, headers=T).headers["Upload-Offset"]) == kept
        filler.unlink()  # space is back
        resumed = patch(api, url, kept, data[kept:])
        assert resumed.status_code == 204, resumed.text
        uid = resumed.headers["Reelout-Video-Id"]
        video = api.get(f"/api/v1/videos/{uid}").json()
    sha = hashlib.sha256(data).hexdigest()
    assert video["original_sha256"] == sha
    original = server.runtime.media_store.open_original(uid)
    with original:
        assert hashlib.sha256(original.read()).hexdigest() == sha


def test_a_checksummed_chunk_on_a_full_disk_keeps_nothing(
    server: LiveServer, small_disk: Path
) -> None:
    data = os.urandom(6 * MiB)
    with server.client() as api:
        url = api.post("/files/", headers={**T, "Upload-Length": str(len(data))}).headers[
            "Location"
        ]
        assert patch(api, url, 0, data[:MiB]).status_code == 204
        filler = fill(small_disk, leave=2 * MiB)
        digest = base64.b64encode(hashlib.sha1(data[MiB:]).digest()).decode()
        full = patch(api, url, MiB, data[MiB:], **{"Upload-Checksum": f"sha1 {digest}"})
        assert (full.status_code, full.headers["Upload-Offset"]) == (507, str(MiB))
        assert upload_file(server, url).stat().st_size == MiB, "back to the chunk's start"
        filler.unlink()
        wrong = base64.b64encode(b"x" * 20).decode()
        mismatch = patch(api, url, MiB, data[MiB:], **{"Upload-Checksum": f"sha1 {wrong}"})
        assert mismatch.status_code == 460
        assert upload_file(server, url).stat().st_size == MiB, "a mismatched chunk is cut off"
        ok = patch(api, url, MiB, data[MiB:], **{"Upload-Checksum": f"sha1 {digest}"})
        assert ok.status_code == 204


@pytest.mark.parametrize("path", ["direct", "legacy"])
def test_a_direct_upload_on_a_full_disk_leaves_nothing(
    server: LiveServer, small_disk: Path, path: str
) -> None:
    data = os.urandom(4 * MiB)
    if path == "direct":
        request = {"content": data, "headers": {"Content-Type": "video/mp4"}}
    else:
        body = b'{"file_base64": "' + base64.b64encode(data) + b'"}'
        request = {"content": body, "headers": {"Content-Type": "application/json"}}
    with server.client() as api:
        filler = fill(small_disk, leave=2 * MiB)
        full = api.post(STAGE, **request)  # type: ignore[arg-type]
        assert (full.status_code, full.json()["code"]) == (507, "INSUFFICIENT_STORAGE")
        assert api.get(STAGE).json()["videos"] == [], "no video is left in uploading"
        assert list((small_disk / "media").iterdir()) == [], "no partial original is left"
        filler.unlink()
        stored = api.post(STAGE, **request)  # type: ignore[arg-type]
        assert stored.status_code == 201, stored.text
        assert stored.json()["original_sha256"] == hashlib.sha256(data).hexdigest()


# -- the reserve, against the real disk: refused when it cannot be kept, accepted when it can --
@pytest.fixture
def reserve_server(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[LiveServer]:
    settings = make_settings(tmp_path, disk_reserve_bytes=request.param, tus_max_size=2**62)
    with serving(settings) as live:
        yield live


@pytest.mark.parametrize("reserve_server", [HUGE_RESERVE], indirect=True)
def test_uploads_that_cannot_keep_the_reserve_are_refused(reserve_server: LiveServer) -> None:
    with reserve_server.client() as api:
        for reply in (
            api.post("/files/", headers={**T, "Upload-Length": "10"}),
            api.post("/files/", headers={**T, "Upload-Defer-Length": "1"}),
            api.post(STAGE, content=b"video", headers={"Content-Type": "video/mp4"}),
            api.post(STAGE, json={"file_base64": base64.b64encode(b"video").decode()}),
        ):
            assert (reply.status_code, reply.json()["code"]) == (507, "INSUFFICIENT_STORAGE")
            assert "Location" not in reply.headers
        assert api.get("/api/v1/videos").json()["videos"] == []
        ready = api.get("/readyz")
        assert ready.status_code == 503
        (reason,) = ready.json()["reasons"]  # uploads and media share one disk here
        assert reason["code"] == "LOW_DISK"
        assert reason["reserve_bytes"] == HUGE_RESERVE > reason["free_bytes"] > 0


@pytest.mark.parametrize("reserve_server", [MiB], indirect=True)
def test_uploads_that_keep_the_reserve_are_accepted(reserve_server: LiveServer) -> None:
    with reserve_server.client() as api:
        assert api.post("/files/", headers={**T, "Upload-Length": "10"}).status_code == 201
        direct = api.post(STAGE, content=b"video", headers={"Content-Type": "video/mp4"})
        assert direct.status_code == 201
        free = shutil.disk_usage(reserve_server.runtime.settings.data_dir).free
        too_big = api.post("/files/", headers={**T, "Upload-Length": str(free)})
        assert (too_big.status_code, too_big.json()["code"]) == (507, "INSUFFICIENT_STORAGE")
        assert api.get("/readyz").json()["status"] == "ready"


# -- RLIMIT_FSIZE on a real `reelout serve`: its writes past the limit fail with EFBIG ---------
@pytest.mark.postgres
def test_a_file_size_limit_answers_507_and_the_upload_resumes(
    start_server: StartServer, pg_server_url: str
) -> None:
    """The issue's reproduction: an 8 MiB PATCH under a low file size limit. The database is
    PostgreSQL, so the limit only meets the upload's own file."""
    reset_pg(pg_server_url)
    served = start_server(
        env={"REELOUT_DATABASE_URL": pg_server_url, "REELOUT_DISK_RESERVE_BYTES": "0"}
    )
    data = os.urandom(8 * MiB)
    with httpx.Client(
        base_url=served.url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=30
    ) as api:
        url = api.post("/files/", headers={**T, "Upload-Length": str(len(data))}).headers[
            "Location"
        ]
        unlimited = resource.prlimit(served.proc.pid, resource.RLIMIT_FSIZE)
        resource.prlimit(served.proc.pid, resource.RLIMIT_FSIZE, (3 * MiB, unlimited[1]))
        full = patch(api, url, 0, data)
        assert (full.status_code, full.json()["code"]) == (507, "INSUFFICIENT_STORAGE")
        kept = int(full.headers["Upload-Offset"])
        assert kept <= 3 * MiB
        assert int(api.head(url, headers=T).headers["Upload-Offset"]) == kept
        resource.prlimit(served.proc.pid, resource.RLIMIT_FSIZE, unlimited)
        resumed = patch(api, url, kept, data[kept:])
        assert resumed.status_code == 204, resumed.text
        video = api.get(f"/api/v1/videos/{resumed.headers['Reelout-Video-Id']}").json()
    assert video["original_sha256"] == hashlib.sha256(data).hexdigest()


@pytest.mark.postgres
def test_a_creation_with_upload_the_disk_refuses_says_where_to_resume(
    start_server: StartServer, pg_server_url: str
) -> None:
    """The upload is made, its first bytes hit the file size limit: the 507 names the upload
    (Location) so the client resumes it instead of starting over."""
    reset_pg(pg_server_url)
    served = start_server(
        env={"REELOUT_DATABASE_URL": pg_server_url, "REELOUT_DISK_RESERVE_BYTES": "0"}
    )
    data = os.urandom(8 * MiB)
    unlimited = resource.prlimit(served.proc.pid, resource.RLIMIT_FSIZE)
    resource.prlimit(served.proc.pid, resource.RLIMIT_FSIZE, (3 * MiB, unlimited[1]))
    with httpx.Client(
        base_url=served.url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=30
    ) as api:
        made = api.post(
            "/files/", content=data, headers={**T, **CT, "Upload-Length": str(len(data))}
        )
        assert (made.status_code, made.json()["code"]) == (507, "INSUFFICIENT_STORAGE")
        url, kept = made.headers["Location"], int(made.headers["Upload-Offset"])
        assert int(api.head(url, headers=T).headers["Upload-Offset"]) == kept
        resource.prlimit(served.proc.pid, resource.RLIMIT_FSIZE, unlimited)
        resumed = patch(api, url, kept, data[kept:])
        assert resumed.status_code == 204, resumed.text
    assert int(resumed.headers["Upload-Offset"]) == len(data)


@pytest.mark.postgres
def test_a_final_upload_the_disk_refuses_leaves_the_link_usable(
    start_server: StartServer, pg_server_url: str
) -> None:
    """Parts under the file size limit, their concatenation over it: the final upload's copy
    fails with EFBIG, answers 507 and is undone, and the link can make it once space is back."""
    reset_pg(pg_server_url)
    served = start_server(
        env={"REELOUT_DATABASE_URL": pg_server_url, "REELOUT_DISK_RESERVE_BYTES": "0"}
    )
    parts = [os.urandom(2 * MiB), os.urandom(2 * MiB)]
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    with httpx.Client(base_url=served.url, headers=admin, timeout=30) as api:
        made = api.post("/api/v1/videos", json={}).json()
    token = {"Authorization": f"Bearer {made['upload']['token']}"}
    with httpx.Client(base_url=served.url, headers=token, timeout=30) as phone:
        urls = []
        for data in parts:
            headers = {**T, "Upload-Concat": "partial", "Upload-Length": str(len(data))}
            url = phone.post("/files/", headers=headers).headers["Location"]
            assert patch(phone, url, 0, data).status_code == 204
            urls.append(url)
        final = {**T, "Upload-Concat": "final;" + " ".join(urls)}
        unlimited = resource.prlimit(served.proc.pid, resource.RLIMIT_FSIZE)
        resource.prlimit(served.proc.pid, resource.RLIMIT_FSIZE, (3 * MiB, unlimited[1]))
        refused = phone.post("/files/", headers=final)
        assert (refused.status_code, refused.json()["code"]) == (507, "INSUFFICIENT_STORAGE")
        assert "Location" not in refused.headers
        resource.prlimit(served.proc.pid, resource.RLIMIT_FSIZE, unlimited)
        made_it = phone.post("/files/", headers=final)
        assert made_it.status_code == 201, made_it.text
    with httpx.Client(base_url=served.url, headers=admin, timeout=30) as api:
        video = api.get(f"/api/v1/videos/{made['uid']}").json()
    assert video["status"]["state"] == "queued"
    assert video["original_sha256"] == hashlib.sha256(b"".join(parts)).hexdigest()
    uploads = sorted(p.name for p in (served.data_dir / "uploads").iterdir())
    assert uploads == sorted(u.rsplit("/", 1)[-1] for u in urls), "no leftover final file"
