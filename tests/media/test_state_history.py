"""A video's state history: every change of its state kept, in the API, on both databases."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

import reelout
from reelout.media import service as media
from reelout.media.models import VideoStateChange
from reelout.media.schemas import VideoState
from tests.conftest import UnrecordedStateChange
from tests.media.clips import Clips
from tests.media.test_pipeline import upload
from tests.support.jobs import run_jobs
from tests.support.live import LiveServer, live_server_fixture
from tests.support.settings import make_settings, start_runtime

server = live_server_fixture(per_database=True)


def changes(api: httpx.Client, uid: str) -> list[dict[str, Any]]:
    reply = api.get(f"/api/v1/videos/{uid}/history")
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["uid"] == uid
    found: list[dict[str, Any]] = body["changes"]
    return found


def steps(found: list[dict[str, Any]]) -> list[tuple[str | None, str, int | None]]:
    return [(c["from_state"], c["to_state"], c["attempt"]) for c in found]


def test_processing_a_re_encode_and_a_failure_are_each_recorded(
    server: LiveServer, clips: Clips
) -> None:
    with server.client() as api:
        good = upload(api, clips("tiny"))
        bad = upload(api, clips("truncated"))
        run_jobs(server.runtime)
        assert api.post(f"/api/v1/videos/{good}/reprocess").status_code == 202
        run_jobs(server.runtime)
        good_changes, bad_changes = changes(api, good), changes(api, bad)
        bad_status = api.get(f"/api/v1/videos/{bad}").json()["status"]

    once = [("queued", "processing", 1), ("processing", "ready", 1)]
    assert steps(good_changes) == [
        (None, "uploading", None),
        ("uploading", "queued", None),
        *once,
        ("ready", "queued", None),  # the re-encode
        *once,
    ]
    assert good_changes[-1]["reason"].startswith("version v-")
    assert good_changes[4]["reason"] == "re-encode requested"
    assert [c["error_code"] for c in good_changes] == [None] * 7
    times = [c["at"] for c in good_changes]
    assert times == sorted(times)

    assert steps(bad_changes) == [
        (None, "uploading", None),
        ("uploading", "queued", None),
        ("queued", "processing", 1),
        ("processing", "error", 1),
    ]
    failed = bad_changes[-1]
    assert (failed["error_code"], failed["reason"]) == ("ERR_MALFORMED", bad_status["error_text"])
    assert failed["reason"]

    reached = {c["to_state"] for c in good_changes + bad_changes}
    assert reached == {state.value for state in VideoState}, "every state, with its history row"


def test_an_unknown_or_deleted_video_has_no_history(server: LiveServer, clips: Clips) -> None:
    with server.client() as api:
        uid = upload(api, clips("tiny"))
        assert len(changes(api, uid)) == 2
        assert api.delete(f"/api/v1/videos/{uid}").status_code == 204
        gone = api.get(f"/api/v1/videos/{uid}/history")
        assert (gone.status_code, gone.json()["code"]) == (404, "VIDEO_NOT_FOUND")
        unauthorized = httpx.get(f"{server.url}/api/v1/videos/{uid}/history")
        assert unauthorized.status_code == 401
    with server.runtime.db.read() as session:
        left = session.scalar(
            select(func.count())
            .select_from(VideoStateChange)
            .where(VideoStateChange.video_uid == uid)
        )
    assert left == 0, "the history goes with its video"


def test_a_state_set_without_its_history_row_is_refused(tmp_path: Path) -> None:
    """The check every test runs before each flush (tests/conftest.py) can fail."""
    rt = start_runtime(make_settings(tmp_path))
    with rt.db.session() as session:
        video = media.create_video(session, rt.clock, source="direct")
        video.state = VideoState.ready.value
        with pytest.raises(UnrecordedStateChange):
            session.flush()
        session.rollback()
    rt.db.dispose()


def _writes_state(node: ast.AST) -> bool:
    """`x.state = …` (also in a tuple), or `state=` given to `.values(…)`/`Video(…)`."""
    if isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        flat = [t for target in targets for t in ast.walk(target)]
        return any(isinstance(t, ast.Attribute) and t.attr == "state" for t in flat)
    if isinstance(node, ast.Call):
        name = getattr(node.func, "attr", getattr(node.func, "id", ""))
        return name in ("values", "Video") and any(k.arg == "state" for k in node.keywords)
    return False


def test_only_the_history_module_sets_a_video_state() -> None:
    """Bulk updates bypass the flush check; the code that touches videos sets no state itself."""
    package = Path(reelout.__file__).parent
    offenders = []
    for path in sorted(package.rglob("*.py")):
        text = path.read_text()
        if "media.models import" not in text or path.name == "history.py":
            continue
        for node in ast.walk(ast.parse(text)):
            if _writes_state(node):
                offenders.append(f"{path.relative_to(package)}:{getattr(node, 'lineno', '?')}")
    assert offenders == []
