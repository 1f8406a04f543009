"""The processing job end to end: real uploads, real ffmpeg, published files read back over HTTP.

Each clip is uploaded and processed once per test module (see `processed`); the tests then read
the video object, the playlists and the files like a player would (checks of hls-checks.md)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import m3u8
import pytest

from reelout.clock import ManualClock
from reelout.jobs import service as jobs
from reelout.jobs.worker import Worker
from reelout.media import playlists
from reelout.tasks import build_registry
from reelout.webhooks import signing
from tests.media.clips import Clips, ffmpeg, picture, tone
from tests.support.jobs import run_jobs
from tests.support.live import LiveServer, live_server_fixture, serving
from tests.support.settings import make_settings
from tests.support.stores import damage_original
from tests.support.waiting import wait_until
from tests.webhooks.receiver import Receiver

FFPROBE = "ffprobe"
FFMPEG_BIN = "ffmpeg"
LADDER_1080 = [(426, 240), (640, 360), (854, 480), (1280, 720), (1920, 1080)]


@dataclass
class Processed:
    uid: str
    video: dict[str, Any]
    folder: Path | None  # the published version folder

    @property
    def sizes(self) -> list[tuple[int, int]]:
        return [(r["width"], r["height"]) for r in self.video["renditions"]]


def upload(api: httpx.Client, path: Path) -> str:
    reply = api.post(
        "/api/v1/orders/O-1/inbound/videos",
        content=path.read_bytes(),
        headers={"Content-Type": "video/mp4", "X-Filename": path.name},
    )
    assert reply.status_code == 201, reply.text
    uid: str = reply.json()["uid"]
    return uid


def make_long(folder: Path) -> Path:
    """10 s of 640x360 at 30 fps with a tone: three 4 s segments per rendition."""
    out = folder / "long.mp4"
    if not out.exists():
        ffmpeg(
            *picture(640, 360, seconds=10),
            *tone(10),
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            str(out),
        )
    return out


server = live_server_fixture(scope="module", folder="pipeline")


@pytest.fixture(scope="module")
def processed(
    server: LiveServer, clips: Clips, tmp_path_factory: pytest.TempPathFactory
) -> Callable[[str], Processed]:
    """`processed(kind)`: the clip uploaded and processed (once), as the API shows it."""
    done: dict[str, Processed] = {}
    extra = tmp_path_factory.mktemp("extra")

    def get(kind: str) -> Processed:
        if kind not in done:
            path = make_long(extra) if kind == "long" else clips(kind)
            with server.client() as api:
                uid = upload(api, path)
                run_jobs(server.runtime)
                video = api.get(f"/api/v1/videos/{uid}").json()
            media = server.runtime.settings.data_dir / "media" / uid
            folders = (
                [p for p in media.iterdir() if p.name.startswith("v-")] if media.exists() else []
            )
            done[kind] = Processed(uid, video, folders[0] if folders else None)
        return done[kind]

    return get


def ffprobe_json(path: Path, *args: str) -> dict[str, Any]:
    out = subprocess.run(
        [FFPROBE, "-v", "error", "-print_format", "json", *args, str(path)],
        capture_output=True,
        check=True,
        text=True,
    ).stdout
    result: dict[str, Any] = json.loads(out)
    return result


def rung_file(folder: Path, rung: str, tmp_path: Path) -> Path:
    """A rung's init segment and media segments joined: one fragmented MP4 ffprobe can read."""
    rung_dir = folder / rung
    parsed = playlists.parse_media_playlist(
        (rung_dir / "index.m3u8").read_text(),
        {p.name: p.stat().st_size for p in rung_dir.iterdir()},
    )
    assert parsed.init_uri is not None
    joined = tmp_path / f"{rung}.mp4"
    with joined.open("wb") as out:
        for name in [parsed.init_uri, *(s.uri for s in parsed.segments)]:
            out.write((rung_dir / name).read_bytes())
    return joined


# -- the ladder (checks 1-5) -------------------------------------------------------------------


def test_a_1080p_source_becomes_the_five_rung_ladder(processed: Callable[[str], Processed]) -> None:
    video = processed("landscape").video
    assert video["status"] == {
        "state": "ready",
        "pct_complete": 100.0,
        "error_code": None,
        "error_text": None,
    }
    assert video["ready_to_stream"] is True
    assert processed("landscape").sizes == LADDER_1080
    assert video["input"] == {"width": 1920, "height": 1080}
    assert video["duration"] == pytest.approx(1.0, abs=0.1)
    assert video["playback"]["hls"].endswith("/master.m3u8")
    assert video["playback"]["mp4"].endswith("/video.mp4")
    assert video["thumbnail"].endswith("/poster.jpg")


def test_a_portrait_source_gets_portrait_rungs(processed: Callable[[str], Processed]) -> None:
    assert processed("portrait").sizes == [(h, w) for w, h in LADDER_1080]


def test_a_rotated_source_is_encoded_upright_with_no_rotation_left(
    processed: Callable[[str], Processed], tmp_path: Path
) -> None:
    rotated = processed("rotated")
    assert rotated.sizes == [(h, w) for w, h in LADDER_1080]
    assert rotated.video["input"] == {"width": 1080, "height": 1920}
    assert rotated.folder is not None
    stream = ffprobe_json(rung_file(rotated.folder, "1080p", tmp_path), "-show_streams")["streams"][
        0
    ]
    assert (stream["width"], stream["height"]) == (1080, 1920)
    assert "side_data_list" not in stream and "rotate" not in stream.get("tags", {})
    poster = ffprobe_json(rotated.folder / "poster.jpg", "-show_streams")["streams"][0]
    assert poster["height"] > poster["width"]


@pytest.mark.parametrize(
    ("kind", "top"),
    [("p720", (1280, 720)), ("p540", (960, 540)), ("tiny", (320, 180))],
)
def test_nothing_is_upscaled(
    processed: Callable[[str], Processed], kind: str, top: tuple[int, int]
) -> None:
    sizes = processed(kind).sizes
    assert sizes[-1] == top
    if kind == "tiny":
        assert sizes == [top]


def test_anamorphic_pixels_come_out_square(
    processed: Callable[[str], Processed], tmp_path: Path
) -> None:
    clip = processed("anamorphic")
    assert clip.sizes == LADDER_1080
    assert clip.folder is not None
    stream = ffprobe_json(rung_file(clip.folder, "1080p", tmp_path), "-show_streams")["streams"][0]
    assert stream.get("sample_aspect_ratio", "1:1") in ("1:1", "0:1")


# -- segments and playlists (checks 6-10) -------------------------------------------------------


def keyframe_times(path: Path) -> list[float]:
    frames = ffprobe_json(
        path,
        "-select_streams",
        "v:0",
        "-skip_frame",
        "nokey",
        "-show_entries",
        "frame=pts_time,pict_type,key_frame",
        "-show_frames",
    )["frames"]
    return [round(float(f["pts_time"]), 3) for f in frames if f.get("key_frame") == 1]


def test_every_segment_starts_on_a_keyframe_aligned_across_rungs(
    processed: Callable[[str], Processed],
) -> None:
    clip = processed("long")
    assert clip.folder is not None
    starts: dict[str, list[float]] = {}
    for rung in ("240p", "360p"):
        rung_dir = clip.folder / rung
        times = []
        playlist = m3u8.loads((rung_dir / "index.m3u8").read_text())
        init = rung_dir / playlist.segment_map[0].uri
        for segment in playlist.segments:
            joined = rung_dir / f"check-{segment.uri}.mp4"
            joined.write_bytes(init.read_bytes() + (rung_dir / segment.uri).read_bytes())
            first = ffprobe_json(
                joined, "-select_streams", "v:0", "-show_frames", "-read_intervals", "%+#1"
            )["frames"][0]
            assert first["key_frame"] == 1 and first["pict_type"] == "I", (rung, segment.uri)
            times.append(float(first["pts_time"]))
            joined.unlink()
        starts[rung] = times
    frame = 1 / 30
    assert all(abs(a - b) < frame for a, b in zip(starts["240p"], starts["360p"], strict=True))


def test_media_playlists_are_vod_with_exact_durations(
    processed: Callable[[str], Processed],
) -> None:
    clip = processed("long")
    assert clip.folder is not None
    for rung in ("240p", "360p"):
        text = (clip.folder / rung / "index.m3u8").read_text()
        playlist = m3u8.loads(text)
        durations = [s.duration for s in playlist.segments]
        assert len(durations) == 3
        assert all(abs(d - 4.0) <= 0.1 for d in durations[:-1])
        assert playlist.target_duration == max(round(d + 0.4999) for d in durations)
        assert playlist.playlist_type == "vod" and playlist.is_endlist
        assert "#EXT-X-INDEPENDENT-SEGMENTS" in text


def test_master_declares_what_was_measured(processed: Callable[[str], Processed]) -> None:
    clip = processed("long")
    assert clip.folder is not None
    master = m3u8.loads((clip.folder / "master.m3u8").read_text())
    assert len(master.playlists) == 2
    for variant in master.playlists:
        info = variant.stream_info
        assert info.bandwidth and info.average_bandwidth and info.codecs and info.frame_rate
        assert info.resolution is not None
        rung_dir = clip.folder / variant.uri.split("/")[0]
        media = m3u8.loads((rung_dir / "index.m3u8").read_text())
        rates = [8 * (rung_dir / s.uri).stat().st_size / s.duration for s in media.segments]
        total = sum((rung_dir / s.uri).stat().st_size for s in media.segments)
        average = 8 * total / sum(s.duration for s in media.segments)
        assert max(rates[:-1]) == pytest.approx(info.bandwidth, rel=0.10)
        assert average == pytest.approx(info.average_bandwidth, rel=0.10)
        assert info.frame_rate == pytest.approx(30.0)


def test_codecs_name_the_real_streams(
    processed: Callable[[str], Processed], tmp_path: Path
) -> None:
    clip = processed("landscape")
    assert clip.folder is not None
    for rendition in clip.video["renditions"]:
        streams = ffprobe_json(
            rung_file(clip.folder, rendition["name"], tmp_path), "-show_streams"
        )["streams"]
        video = next(s for s in streams if s["codec_type"] == "video")
        expected = playlists.codecs_string("h264", video["profile"], video["level"], True)
        assert rendition["codecs"] == expected
        assert video["profile"] == "High" and video["pix_fmt"] == "yuv420p"


def test_every_playlist_parses_and_every_uri_answers(
    processed: Callable[[str], Processed], server: LiveServer
) -> None:
    video = processed("landscape").video
    with httpx.Client(timeout=30) as http:
        master_url = video["playback"]["hls"]
        master = m3u8.loads(http.get(master_url).text, uri=master_url)
        assert len(master.playlists) == 5
        for variant in master.playlists:
            media_url = variant.absolute_uri
            media = m3u8.loads(http.get(media_url).text, uri=media_url)
            uris = [media.segment_map[0].absolute_uri] + [s.absolute_uri for s in media.segments]
            for uri in uris:
                assert http.head(uri).status_code == 200, uri


# -- audio, colour, frame rate, poster (checks 12-15) --------------------------------------------


def audio_streams(clip: Processed, tmp_path: Path) -> list[dict[str, Any]]:
    assert clip.folder is not None
    name = clip.video["renditions"][-1]["name"]
    streams = ffprobe_json(rung_file(clip.folder, name, tmp_path), "-show_streams")["streams"]
    return [s for s in streams if s["codec_type"] == "audio"]


def test_a_silent_source_gets_no_audio_codec(
    processed: Callable[[str], Processed], tmp_path: Path
) -> None:
    clip = processed("no_audio")
    assert clip.video["status"]["state"] == "ready"
    assert all("mp4a" not in r["codecs"] for r in clip.video["renditions"])
    assert audio_streams(clip, tmp_path) == []


@pytest.mark.parametrize("kind", ["mono", "surround", "multi_audio"])
def test_audio_always_comes_out_as_one_stereo_track(
    processed: Callable[[str], Processed], tmp_path: Path, kind: str
) -> None:
    clip = processed(kind)
    (audio,) = audio_streams(clip, tmp_path)
    assert (audio["channels"], audio["sample_rate"], audio["codec_name"]) == (2, "48000", "aac")
    assert all(r["codecs"].endswith(",mp4a.40.2") for r in clip.video["renditions"])
    assert clip.folder is not None
    joined = rung_file(clip.folder, clip.video["renditions"][-1]["name"], tmp_path)
    assert mean_volume(joined) > -40, "the default track (a tone), not the silent first one"


def mean_volume(path: Path) -> float:
    report = subprocess.run(
        [
            FFMPEG_BIN,
            "-nostdin",
            "-i",
            str(path),
            "-map",
            "0:a",
            "-af",
            "volumedetect",
            "-f",
            "null",
            "-",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stderr
    line = next(x for x in report.splitlines() if "mean_volume:" in x)
    return float(line.split("mean_volume:")[1].split("dB")[0])


def test_hdr_is_tone_mapped_to_8_bit_bt709(
    processed: Callable[[str], Processed], tmp_path: Path
) -> None:
    clip = processed("hdr")
    assert clip.video["status"]["state"] == "ready", clip.video["status"]
    assert clip.folder is not None
    name = clip.video["renditions"][-1]["name"]
    stream = ffprobe_json(rung_file(clip.folder, name, tmp_path), "-show_streams")["streams"][0]
    assert stream["pix_fmt"] == "yuv420p"
    assert (stream["color_transfer"], stream["color_primaries"], stream["color_space"]) == (
        "bt709",
        "bt709",
        "bt709",
    )


def test_variable_frame_rate_becomes_constant(
    processed: Callable[[str], Processed], tmp_path: Path
) -> None:
    clip = processed("vfr")
    assert clip.folder is not None
    joined = rung_file(clip.folder, clip.video["renditions"][-1]["name"], tmp_path)
    streams = ffprobe_json(joined, "-show_streams", "-count_frames")["streams"]
    video = next(s for s in streams if s["codec_type"] == "video")
    assert video["r_frame_rate"] == video["avg_frame_rate"] == "30/1"
    audio = next(s for s in streams if s["codec_type"] == "audio")
    frames = int(video["nb_read_frames"])
    assert abs(frames / 30 - float(audio["duration"])) <= 0.040


def luminance(path: Path) -> float:
    out = ffprobe_json(
        Path(f"movie={path},signalstats"),
        "-f",
        "lavfi",
        "-show_entries",
        "frame_tags=lavfi.signalstats.YAVG",
        "-show_frames",
    )
    return float(out["frames"][0]["tags"]["lavfi.signalstats.YAVG"])


def test_the_poster_is_a_jpeg_that_is_not_black(processed: Callable[[str], Processed]) -> None:
    clip = processed("landscape")
    assert clip.folder is not None
    poster = clip.folder / "poster.jpg"
    assert poster.read_bytes()[:3] == b"\xff\xd8\xff"
    stream = ffprobe_json(poster, "-show_streams")["streams"][0]
    assert (stream["width"], stream["height"]) == (1920, 1080)
    assert luminance(poster) > 30


# -- states and errors (check 16) ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "code"),
    [
        ("text", "ERR_NON_VIDEO"),
        ("still", "ERR_NON_VIDEO"),
        ("audio_only", "ERR_NON_VIDEO"),
        ("truncated", "ERR_MALFORMED"),
        ("truncated_faststart", "ERR_MALFORMED"),
    ],
)
def test_unusable_input_ends_in_error_with_a_code(
    processed: Callable[[str], Processed], kind: str, code: str
) -> None:
    clip = processed(kind)
    status = clip.video["status"]
    assert (status["state"], status["error_code"]) == ("error", code)
    assert status["error_text"], "a reason a person can read"
    assert clip.video["playback"] is None and clip.folder is None


def test_a_zero_byte_tus_upload_is_not_a_video(server: LiveServer) -> None:
    with server.client() as api:
        created = api.post("/files/", headers={"Tus-Resumable": "1.0.0", "Upload-Length": "0"})
        assert created.status_code == 201
        uid = created.headers["Reelout-Video-Id"]
        run_jobs(server.runtime)
        status = api.get(f"/api/v1/videos/{uid}").json()["status"]
    assert (status["state"], status["error_code"]) == ("error", "ERR_NON_VIDEO")


def process_with(
    tmp_path: Path, clip: Path, storage: str | None = None, **settings: object
) -> dict[str, Any]:
    with (
        serving(make_settings(tmp_path, storage_url=storage, **settings)) as live,
        live.client() as api,
    ):
        uid = upload(api, clip)
        run_jobs(live.runtime)
        video: dict[str, Any] = api.get(f"/api/v1/videos/{uid}").json()
        return video


@pytest.mark.parametrize(
    ("limit", "code"),
    [
        ({"media_max_duration_seconds": 0.5}, "ERR_DURATION_LIMIT"),
        ({"media_max_pixels": 320 * 180 - 1}, "ERR_RESOLUTION_LIMIT"),
        ({"media_timeout_min_seconds": 0.01, "media_timeout_factor": 0.001}, "ERR_TIMEOUT"),
    ],
)
@pytest.mark.both_stores
def test_limits_end_in_error_just_past_them(
    tmp_path: Path, clips: Clips, limit: dict[str, float], code: str, storage: str | None
) -> None:
    status = process_with(tmp_path, clips("tiny"), storage, **limit)["status"]
    assert (status["state"], status["error_code"]) == ("error", code)


@pytest.mark.parametrize(
    "limit",
    [{"media_max_duration_seconds": 1.5}, {"media_max_pixels": 320 * 180}],
)
def test_a_video_right_at_a_limit_is_processed(
    tmp_path: Path, clips: Clips, limit: dict[str, float]
) -> None:
    assert process_with(tmp_path, clips("tiny"), **limit)["status"]["state"] == "ready"


def test_progress_only_rises_on_the_way_to_ready(server: LiveServer, tmp_path: Path) -> None:
    import threading

    clip = make_long(tmp_path)
    seen: list[tuple[str, float | None]] = []
    with server.client() as api:
        uid = upload(api, clip)
        worker = threading.Thread(target=run_jobs, args=(server.runtime,))
        worker.start()
        while worker.is_alive():
            status = api.get(f"/api/v1/videos/{uid}").json()["status"]
            seen.append((status["state"], status["pct_complete"]))
        worker.join()
        seen.append(tuple(api.get(f"/api/v1/videos/{uid}").json()["status"].values())[:2])
    order = {"queued": 0, "processing": 1, "ready": 2}
    states = [order[state] for state, _ in seen]
    assert states == sorted(states) and states[-1] == 2
    pcts = [pct for state, pct in seen if state == "processing" and pct is not None]
    assert pcts == sorted(pcts)
    assert all(0 <= p <= 100 for p in pcts)
    assert seen[-1] == ("ready", 100.0)


@pytest.mark.both_stores
def test_the_third_unexpected_failure_ends_in_error(
    tmp_path: Path, clips: Clips, storage: str | None
) -> None:
    clock = ManualClock()
    settings = make_settings(tmp_path, storage_url=storage)
    with serving(settings, clock) as live, live.client() as api:
        uid = upload(api, clips("tiny"))
        damage_original(live.runtime, uid, None)
        for _ in range(3):
            run_jobs(live.runtime)
            clock.advance(3600)  # past any retry backoff
        status = api.get(f"/api/v1/videos/{uid}").json()["status"]
    assert (status["state"], status["error_code"]) == ("error", "ERR_UNKNOWN")
    assert "3 times" in status["error_text"] and "FileNotFoundError" in status["error_text"]


def test_a_job_whose_workers_keep_dying_ends_in_error(tmp_path: Path, clips: Clips) -> None:
    clock = ManualClock()
    with serving(make_settings(tmp_path), clock) as live:
        rt = live.runtime
        with live.client() as api:
            uid = upload(api, clips("tiny"))
            for attempt in range(3):  # each worker claims the job, then dies without a word
                claimed = jobs.claim(rt.db, rt.clock, f"doomed-{attempt}/0", 30)
                assert claimed is not None and claimed.kind == "media.process"
                clock.advance(31)
            run_jobs(live.runtime)  # the next worker finds the lease expired on the last attempt
            status = api.get(f"/api/v1/videos/{uid}").json()["status"]
    assert (status["state"], status["error_code"]) == ("error", "ERR_UNKNOWN")
    assert "lost the lease" in status["error_text"]


def test_a_well_formed_file_whose_pictures_are_garbage_fails_to_decode(
    tmp_path: Path, clips: Clips, server: LiveServer
) -> None:
    data = bytearray(clips("tiny").read_bytes())
    at = data.find(b"mdat")
    end = at - 4 + int.from_bytes(data[at - 4 : at], "big")
    data[at + 4 : end] = bytes(end - at - 4)  # boxes intact, every frame zeroed
    zeroed = tmp_path / "zeroed.mp4"
    zeroed.write_bytes(bytes(data))
    with server.client() as api:
        uid = upload(api, zeroed)
        run_jobs(server.runtime)
        status = api.get(f"/api/v1/videos/{uid}").json()["status"]
    assert (status["state"], status["error_code"]) == ("error", "ERR_DECODE")
    assert status["error_text"].startswith("the video could not be decoded; ffmpeg said: ")
    assert len(status["error_text"]) < 600


def test_webhooks_announce_ready_and_error_with_verifiable_signatures(
    tmp_path: Path, clips: Clips
) -> None:
    clock = ManualClock()
    settings = make_settings(
        tmp_path, public_url="https://media.example.com", webhook_allow_networks="127.0.0.0/8"
    )
    with Receiver(clock) as receiver, serving(settings, clock) as live, live.client() as api:
        hook = api.post("/api/v1/webhooks", json={"url": receiver.url()}).json()
        good, bad = upload(api, clips("tiny")), upload(api, clips("text"))
        run_jobs(live.runtime)  # processing, then the deliveries it queued
        run_jobs(live.runtime)
    events = {}
    for request in receiver.requests:
        now = int(clock.now().timestamp())
        assert signing.verify(hook["secret"], request.signature, request.body, now)
        body = json.loads(request.body)
        assert body["id"] == request.event_id
        events[body["data"]["video"]["uid"]] = body
    ready, error = events[good], events[bad]
    assert ready["type"] == "video.ready"
    assert ready["data"]["video"]["status"]["state"] == "ready"
    assert ready["data"]["video"]["playback"]["hls"].startswith("https://media.example.com/media/")
    assert error["type"] == "video.error"
    assert error["data"]["video"]["status"]["error_code"] == "ERR_NON_VIDEO"


def test_stopping_the_worker_kills_the_encode_and_gives_the_job_back(
    server: LiveServer, tmp_path: Path
) -> None:
    import threading

    import psutil

    clip = tmp_path / "longer.mp4"  # long enough that the encode is surely running
    ffmpeg(*picture(640, 360, seconds=20), *tone(20), "-c:v", "libx264", "-preset",
           "ultrafast", "-c:a", "aac", str(clip))  # fmt: skip
    rt = server.runtime
    with server.client() as api:
        uid = upload(api, clip)
        worker = Worker(rt, build_registry(), worker_id="stopping", concurrency=1, poll_seconds=0.1)
        stop = threading.Event()
        thread = threading.Thread(target=worker.run_forever, args=(stop,))
        thread.start()
        wait_until(
            lambda: api.get(f"/api/v1/videos/{uid}").json()["status"]["state"] == "processing",
            30,
            "the video to be processing",
        )
        stop.set()
        thread.join(30)
        assert not thread.is_alive()
        mine = psutil.Process().children(recursive=True)
        assert [p for p in mine if p.name() == "ffmpeg"] == []
        with rt.db.read() as session:
            listed = jobs.list_jobs(session, kind="media.process")
        (job,) = [j for j in listed if j.payload == {"uid": uid}]
        assert job.state == "queued", "given back untried, not failed"
        run_jobs(server.runtime)  # another worker picks it up and finishes it
        assert api.get(f"/api/v1/videos/{uid}").json()["status"]["state"] == "ready"
