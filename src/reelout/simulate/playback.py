"""The rehearsal's test clip and its real playback: a tiny clip made with Reelout's ffmpeg,
published through a real tus upload and the server's own processing, and each view's first
requests of it (the HLS master, one media playlist, its init and first segment), timed."""

from __future__ import annotations

import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx
import m3u8

from reelout.media.ffmpeg import find_tools

CLIP_SECONDS = 2
CLIP_SIZE = "320x180"
READY_TIMEOUT_SECONDS = 120.0  # real seconds the test clip has to be processed (--clip-timeout)
POLL_SECONDS = 0.5
MAKE_TIMEOUT_SECONDS = 60.0  # for ffmpeg to make the clip
TITLE = "reelout simulate: test clip"

Progress = Callable[[str], None]


class ClipNotReady(RuntimeError):
    """The test clip could not be made, uploaded or processed in time."""


def make_clip(folder: Path, configured: str | None = None) -> Path:
    """A 2 s 320x180 clip (test pattern and a tone, H.264/AAC) made with the ffmpeg Reelout
    uses (`media.ffmpeg.find_tools`): `configured` (REELOUT_FFMPEG), else PATH's, else the
    imageio-ffmpeg build."""
    ffmpeg = find_tools(configured).ffmpeg
    out = folder / "reelout-simulate-clip.mp4"
    picture = f"testsrc2=size={CLIP_SIZE}:rate=25:duration={CLIP_SECONDS}"
    tone = f"sine=frequency=440:sample_rate=48000:duration={CLIP_SECONDS}"
    command = [ffmpeg, "-v", "error", "-y", "-nostdin", "-f", "lavfi", "-i", picture,
               "-f", "lavfi", "-i", tone, "-c:v", "libx264", "-preset", "ultrafast",
               "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "64k", str(out)]  # fmt: skip
    try:
        subprocess.run(command, check=True, capture_output=True, timeout=MAKE_TIMEOUT_SECONDS)
    except (OSError, subprocess.SubprocessError) as exc:
        said = getattr(exc, "stderr", b"") or b""
        raise ClipNotReady(
            f"could not make the test clip with {ffmpeg}: {exc} {said.decode(errors='replace')}"
        ) from exc
    return out


def tus_send(admin: httpx.Client, content: bytes, length: int, title: str) -> tuple[str, int]:
    """A real tus upload through a creator upload link, `content` (the first bytes of
    `length`) in the creation request: the video's uid and the offset the server reached."""
    link = admin.post("/api/v1/videos", json={"meta": {"title": title}})
    link.raise_for_status()
    body = link.json()
    reply = admin.post(
        body["upload"]["url"],
        content=content,
        headers={
            "Authorization": f"Bearer {body['upload']['token']}",
            "Tus-Resumable": "1.0.0",
            "Upload-Length": str(length),
            "Content-Type": "application/offset+octet-stream",
        },
    )
    reply.raise_for_status()
    return str(body["uid"]), int(reply.headers["Upload-Offset"])


@dataclass(frozen=True)
class Clip:
    uid: str
    size: int  # bytes uploaded
    hls: str  # the master playlist's URL, as the playback API gives it to an app
    renditions: int
    seconds: float  # real time from the upload's start to ready


def publish(
    admin: httpx.Client, app: httpx.Client, timeout: float, said: Progress, ffmpeg: str | None
) -> Clip:
    """Make the test clip (with `ffmpeg`, as `make_clip`), upload it over tus, wait (at most
    `timeout` real seconds) for the server to process it, and ask the playback API, with the
    app's key, where to play it."""
    began = time.monotonic()
    said(f"publishing a test clip ({CLIP_SECONDS} s, {CLIP_SIZE}) for the views to play …")
    with tempfile.TemporaryDirectory(prefix="reelout-simulate-") as folder:
        content = make_clip(Path(folder), ffmpeg).read_bytes()
    uid, _ = tus_send(admin, content, len(content), TITLE)
    said(f"  uploaded {len(content) / 1024:.0f} KiB over tus as video {uid}; processing …")
    wait_ready(admin, uid, began + timeout, said)
    info = app.get(f"/api/v1/videos/{uid}/playback")
    info.raise_for_status()
    body = info.json()
    clip = Clip(uid, len(content), str(body["hls"]), len(body["renditions"]),
                time.monotonic() - began)  # fmt: skip
    plural = "" if clip.renditions == 1 else "s"
    said(f"  ready in {clip.seconds:.1f} s ({clip.renditions} rendition{plural}): every view "
         "fetches its master playlist, a media playlist, its init and first segment")  # fmt: skip
    return clip


def wait_ready(admin: httpx.Client, uid: str, deadline: float, said: Progress) -> None:
    """Poll the video until it is ready; ClipNotReady when it fails or the deadline passes."""
    last = ""
    while True:
        reply = admin.get(f"/api/v1/videos/{uid}")
        reply.raise_for_status()
        status = reply.json()["status"]
        if status["state"] == "ready":
            return
        if status["state"] == "error":
            raise ClipNotReady(f"the server could not process the test clip {uid}: "
                               f"{status['error_code']} {status['error_text'] or ''}".strip())  # fmt: skip
        shown = _status(status)
        if time.monotonic() > deadline:
            raise ClipNotReady(
                f"the test clip {uid} was not ready in time ({shown}); is the server's job "
                "worker running? (--clip-timeout sets the wait)"
            )
        if shown != last:
            said(f"  {shown}")
            last = shown
        time.sleep(POLL_SECONDS)


def _status(status: dict[str, object]) -> str:
    pct = status.get("pct_complete")
    return f"{status['state']}" + (f" {float(str(pct)):.0f} %" if pct is not None else "")


@dataclass(frozen=True)
class Fetched:
    """One view's requests of the clip: the real time they took, the bytes they brought, and
    what failed (None: they all succeeded)."""

    seconds: float
    bytes: int
    failure: str | None = None


class _BadPlaylist(ValueError):
    pass


@dataclass
class Player:
    """What a player does before its first frame, over one shared client."""

    http: httpx.Client
    master: str  # URL of the HLS master playlist

    def view(self) -> Fetched:
        began, got = time.monotonic(), 0
        try:
            master = self._get(self.master)
            got += len(master.content)
            media_url = urljoin(self.master, _first(m3u8.loads(master.text).playlists, "variant"))
            media = self._get(media_url)
            got += len(media.content)
            parsed = m3u8.loads(media.text)
            for uri in (
                _first(parsed.segment_map or [], "init"),
                _first(parsed.segments, "segment"),
            ):
                got += len(self._get(urljoin(media_url, uri)).content)
        except (httpx.HTTPError, _BadPlaylist) as exc:
            return Fetched(time.monotonic() - began, got, str(exc) or type(exc).__name__)
        return Fetched(time.monotonic() - began, got)

    def _get(self, url: str) -> httpx.Response:
        reply = self.http.get(url)
        reply.raise_for_status()
        return reply


def _first(items: Iterable[Any], what: str) -> str:
    """The URI of the first playlist item (a variant, init section or segment)."""
    listed = list(items)
    if not listed or not getattr(listed[0], "uri", None):
        raise _BadPlaylist(f"the playlist lists no {what}")
    return str(listed[0].uri)
