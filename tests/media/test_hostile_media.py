"""Hostile uploads: playlists, lists of files and lying names that would make ffmpeg read other
files or URLs. Each is refused with a stable code, through the probe (ffprobe and PyAV) and
through the real processing job, and nothing but the upload itself is read.

The "secret" is a real video elsewhere under tmp; the controls show that an unrestricted
ffprobe/PyAV does read it through the same hostile file, so the refusals are not an accident."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import httpx
import pytest

from reelout.media.probe import ProbeError, probe
from reelout.media.sandbox import Sandbox, confinement_problem, landlock_abi
from reelout.media.sandbox import run as sandbox_run
from tests.media.clips import Clips, ffmpeg, picture
from tests.media.test_bundled_ffmpeg import wait_ready
from tests.media.test_pipeline import upload
from tests.support.jobs import run_jobs
from tests.support.live import LiveServer, StartServer, live_server_fixture
from tests.support.settings import ADMIN_TOKEN

FFPROBE = shutil.which("ffprobe")
needs_ffprobe = pytest.mark.skipif(FFPROBE is None, reason="no ffprobe on PATH")
needs_landlock = pytest.mark.skipif(landlock_abi() < 1, reason="no Landlock in this kernel")


@dataclass
class Elsewhere:
    """Files outside the upload that a hostile upload names, and a port nobody should call."""

    ts: Path
    mp4: Path
    listener: socket.socket

    @property
    def port(self) -> int:
        return int(self.listener.getsockname()[1])

    def called(self) -> bool:
        """Whether anything connected to the listener (a finished handshake waits in the
        backlog until accepted)."""
        try:
            conn, _ = self.listener.accept()
        except BlockingIOError:
            return False
        conn.close()
        return True


@pytest.fixture(scope="module")
def elsewhere(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Elsewhere]:
    folder = tmp_path_factory.mktemp("elsewhere")
    ts, mp4 = folder / "secret.ts", folder / "secret.mp4"
    x264 = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
    ffmpeg(*picture(320, 180), *x264, str(ts))
    ffmpeg(*picture(320, 180), *x264, str(mp4))
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.setblocking(False)
    yield Elsewhere(ts, mp4, listener)
    listener.close()


def hls(target: str) -> bytes:
    return (
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n"
        f"#EXTINF:1.0,\n{target}\n#EXT-X-ENDLIST\n"
    ).encode()


def dash(target: str) -> bytes:
    return f"""<?xml version="1.0" encoding="utf-8"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" mediaPresentationDuration="PT1S"
     minBufferTime="PT1S" profiles="urn:mpeg:dash:profile:isoff-on-demand:2011">
  <Period><AdaptationSet mimeType="video/mp4">
    <Representation id="1" bandwidth="200000" width="320" height="180" codecs="avc1.64000d">
      <BaseURL>{target}</BaseURL><SegmentBase/>
    </Representation>
  </AdaptationSet></Period>
</MPD>
""".encode()


def zipped(target: Path) -> bytes:
    out = target.with_name("zipped.zip")
    with zipfile.ZipFile(out, "w") as archive:
        archive.write(target, "video.mp4")
    return out.read_bytes()


# name -> (file name, bytes); the names give each demuxer its best chance to be picked
HOSTILE: dict[str, Callable[[Elsewhere], tuple[str, bytes]]] = {
    "hls_local_file": lambda e: ("list.m3u8", hls(str(e.ts))),
    "hls_file_url": lambda e: ("list.m3u8", hls(f"file:{e.ts}")),
    "hls_http_url": lambda e: ("list.m3u8", hls(f"http://127.0.0.1:{e.port}/secret.ts")),
    "dash_local_file": lambda e: ("manifest.mpd", dash(f"file://{e.mp4}")),
    "ffconcat": lambda e: ("list.ffconcat", f"ffconcat version 1.0\nfile '{e.ts}'\n".encode()),
    "playlist_named_mp4": lambda e: ("holiday.mp4", hls(str(e.ts))),
    "zip": lambda e: ("video.zip", zipped(e.mp4)),
}


def write_hostile(kind: str, elsewhere: Elsewhere, folder: Path) -> Path:
    name, data = HOSTILE[kind](elsewhere)
    path = folder / kind / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.fixture(params=[pytest.param("ffprobe", marks=needs_ffprobe), "pyav"])
def tool(request: pytest.FixtureRequest) -> str | None:
    return FFPROBE if request.param == "ffprobe" else None


# --- the probe ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(HOSTILE))
def test_the_probe_refuses_hostile_files(
    kind: str, tool: str | None, elsewhere: Elsewhere, tmp_path: Path
) -> None:
    path = write_hostile(kind, elsewhere, tmp_path)
    with pytest.raises(ProbeError) as caught:
        probe(path, tool)
    assert caught.value.code == "ERR_NON_VIDEO"
    assert "not" in caught.value.text and "MP4/MOV" in caught.value.text
    assert not elsewhere.called()


def test_a_truncated_mp4_is_malformed_and_a_real_mkv_named_mp4_is_read(
    tool: str | None, clips: Clips, tmp_path: Path
) -> None:
    with pytest.raises(ProbeError) as caught:
        probe(clips("truncated"), tool)
    assert caught.value.code == "ERR_MALFORMED"
    mkv = make_mkv_named_mp4(tmp_path)
    info = probe(mkv, tool)
    assert info.format_name == "matroska,webm" and info.video is not None


def make_mkv_named_mp4(folder: Path) -> Path:
    out = folder / "really_matroska.mp4"
    ffmpeg(
        *picture(320, 180), "-c:v", "libx264", "-preset", "ultrafast", "-f", "matroska", str(out)
    )
    return out


@needs_ffprobe
@pytest.mark.parametrize("kind", ["hls_local_file", "playlist_named_mp4"])
def test_control_unrestricted_ffprobe_reads_the_other_file(
    kind: str, elsewhere: Elsewhere, tmp_path: Path
) -> None:
    """Without the allowlists the same hostile file makes ffprobe read the secret video (the
    concat demuxer's own safe mode refuses absolute paths, so ffconcat has no control)."""
    path = write_hostile(kind, elsewhere, tmp_path)
    out = subprocess.run(
        [str(FFPROBE), "-v", "error", "-print_format", "json", "-show_streams", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    streams = json.loads(out.stdout or "{}").get("streams", [])
    assert [(s["codec_name"], s["width"]) for s in streams] == [("h264", 320)]


def test_control_unrestricted_pyav_reads_the_other_file(
    elsewhere: Elsewhere, tmp_path: Path
) -> None:
    path = write_hostile("hls_local_file", elsewhere, tmp_path)
    with av.open(str(path)) as container:
        assert container.format.name == "hls"
        assert container.streams.video[0].codec_context.width == 320


def test_containers_can_be_narrowed_and_widened_within_the_safe_set(clips: Clips) -> None:
    from reelout.media.containers import InputPolicy

    with pytest.raises(ProbeError) as caught:
        probe(clips("tiny"), FFPROBE, policy=InputPolicy(("matroska",)))
    assert caught.value.code == "ERR_NON_VIDEO" and "Matroska/WebM" in caught.value.text
    assert probe(clips("tiny"), FFPROBE, policy=InputPolicy(("mov", "flv"))).video is not None
    for unsafe in (("hls",), ("concat",), ("image2",), ()):
        with pytest.raises(ValueError, match="non-empty subset"):
            InputPolicy(unsafe)


# --- the sandbox -------------------------------------------------------------------------------


@needs_ffprobe
@needs_landlock
def test_a_confined_ffprobe_reads_its_source_and_nothing_else(
    elsewhere: Elsewhere, clips: Clips
) -> None:
    own = clips("tiny")
    command = [str(FFPROBE), "-v", "error", "-show_entries", "format=format_name"]
    allowed = sandbox_run([*command, f"file:{own}"], Sandbox(reads=(own,)), 60)
    assert allowed.returncode == 0 and "format_name=mov" in allowed.stdout
    other = sandbox_run([*command, f"file:{elsewhere.ts}"], Sandbox(reads=(own,)), 60)
    assert other.returncode != 0 and "Permission denied" in other.stderr
    # not the server's environment (its secrets) either
    environ = sandbox_run(["cat", f"/proc/{os.getpid()}/environ"], Sandbox(), 60)
    assert environ.returncode != 0 and environ.stdout == ""


@needs_landlock
def test_an_ffmpeg_that_cannot_run_confined_is_found_out_at_start_up(tmp_path: Path) -> None:
    """e.g. one whose libraries live outside the folders the sandbox opens."""
    from reelout.media.ffmpeg import find_tools

    tools = find_tools()
    assert confinement_problem([tools.ffmpeg, *([tools.ffprobe] if tools.ffprobe else [])]) is None
    odd = tmp_path / "opt" / "bin" / "ffmpeg"
    odd.parent.mkdir(parents=True)
    odd.write_text("#!/bin/sh\nexec cat /etc/hostname\n")  # needs a file the sandbox closes
    odd.chmod(0o755)
    problem = confinement_problem([str(odd)])
    assert problem is not None and "Permission denied" in problem


# --- the processing job ------------------------------------------------------------------------


server = live_server_fixture(scope="module", folder="hostile")


def process(server: LiveServer, path: Path) -> tuple[dict[str, object], list[Path]]:
    """Upload and process `path`; the video and every file left under its media folder."""
    with server.client() as api:
        uid = upload(api, path)
        run_jobs(server.runtime)
        status: dict[str, object] = api.get(f"/api/v1/videos/{uid}").json()["status"]
    folder = server.runtime.settings.data_dir / "media" / uid
    return status, sorted(p for p in folder.rglob("*") if p.is_file())


@pytest.mark.parametrize("kind", list(HOSTILE))
def test_processing_refuses_hostile_files(
    kind: str, server: LiveServer, elsewhere: Elsewhere, tmp_path: Path
) -> None:
    status, files = process(server, write_hostile(kind, elsewhere, tmp_path))
    assert (status["state"], status["error_code"]) == ("error", "ERR_NON_VIDEO")
    assert [p.name for p in files] == ["original"], "no output, no scratch left"
    assert not elsewhere.called()


def test_processing_a_truncated_mp4_fails_as_malformed(server: LiveServer, clips: Clips) -> None:
    status, files = process(server, clips("truncated"))
    assert (status["state"], status["error_code"]) == ("error", "ERR_MALFORMED")
    assert [p.name for p in files] == ["original"]


def test_a_real_mkv_named_mp4_is_processed(server: LiveServer, tmp_path: Path) -> None:
    status, files = process(server, make_mkv_named_mp4(tmp_path))
    assert status["state"] == "ready"
    assert any(p.name == "master.m3u8" for p in files)


def test_the_pyav_path_refuses_a_playlist_too(
    start_server: StartServer, elsewhere: Elsewhere, tmp_path: Path
) -> None:
    venv_bin = str(Path(sys.executable).parent)
    server = start_server(env={"PATH": venv_bin, "REELOUT_EMBEDDED_WORKER": "true"})
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=30) as api:
        for kind in ("hls_local_file", "ffconcat"):
            path = write_hostile(kind, elsewhere, tmp_path)
            reply = api.post(
                "/api/v1/orders/O-9/inbound/videos",
                content=path.read_bytes(),
                headers={"Content-Type": "video/mp4"},
            )
            assert reply.status_code == 201
            status = wait_ready(api, reply.json()["uid"])["status"]
            assert (status["state"], status["error_code"]) == ("error", "ERR_NON_VIDEO")  # type: ignore[index]
    assert "probing with PyAV" in server.log.read_text()


def test_every_ffmpeg_input_is_a_file_url_with_a_forced_allowed_demuxer(
    clips: Clips, tmp_path: Path
) -> None:
    from reelout.media import encode
    from reelout.media.ladder import Limits, plan_ladder

    source = clips("tiny")
    src = probe(source, FFPROBE)
    plan = plan_ladder(src, Limits(max_duration_seconds=60, max_pixels=1920 * 1080))
    commands = [
        encode.hls_command("ffmpeg", plan, src, source, tmp_path),
        encode.mp4_command("ffmpeg", tmp_path / "top.frag.mp4", tmp_path / "video.mp4"),
        encode.poster_command("ffmpeg", tmp_path / "video.mp4", 1.0, tmp_path / "poster.jpg"),
    ]
    for args in commands:
        at = args.index("-i")
        assert args[at + 1].startswith("file:/")
        before = args[:at]
        assert before[before.index("-f") + 1] == "mov"
        assert before[before.index("-protocol_whitelist") + 1] == "file"
        assert "hls" not in before[before.index("-format_whitelist") + 1].split(",")
