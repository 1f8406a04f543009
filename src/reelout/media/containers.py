"""Which containers an upload may be in: the demuxer allowlist and the input options it becomes.

Uploads are untrusted input to ffmpeg. Left to itself, ffmpeg picks a demuxer from the content,
and some demuxers open other files or URLs named inside the upload (HLS and DASH playlists,
concat lists, image sequences). So every ffprobe/ffmpeg/PyAV open of an upload gets:

- `format_whitelist`: ffmpeg refuses any demuxer not on the list right after detecting it,
  before the demuxer reads a byte (and nested opens inherit the list);
- `protocol_whitelist=file` and a `file:` URL: only the local file protocol, never http, pipe,
  concat, subfile, ...;
- for the encode, the demuxer the probe found, forced with `-f`, so nothing is detected twice.

What is accepted by default and why: MP4/MOV (every phone; 3GP goes through the same demuxer),
Matroska/WebM (Android screen recorders, OBS, browsers' MediaRecorder), AVI (dashcams, older
cameras), MPEG-TS (camcorders' AVCHD .mts/.m2ts) and MPEG-PS (DVD camcorders' .mpg/.mod/.vob).
FLV, ASF/WMV and Ogg can be turned on (`REELOUT_MEDIA_CONTAINERS`) but are off: no phone or
camera made today records them, and each demuxer is attack surface. Nothing else can be turned
on: every other demuxer is either a playlist/list/sequence that reads other files, a raw stream,
or a device.

Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# demuxer (ffmpeg's first name for it) -> what a person calls it
ACCEPTABLE = {
    "mov": "MP4/MOV",
    "matroska": "Matroska/WebM",
    "avi": "AVI",
    "mpegts": "MPEG-TS",
    "mpeg": "MPEG-PS",
    "flv": "FLV",
    "asf": "ASF/WMV",
    "ogg": "Ogg",
}
DEFAULT_CONTAINERS = ("mov", "matroska", "avi", "mpegts", "mpeg")


def file_url(path: Path) -> str:
    """The `file:` URL of a local path: no other protocol, and no `name:` prefix is read as one."""
    return "file:" + str(path.absolute())


@dataclass(frozen=True)
class InputPolicy:
    """The containers accepted for an upload, as ffmpeg options."""

    containers: tuple[str, ...] = DEFAULT_CONTAINERS

    def __post_init__(self) -> None:
        unknown = sorted(set(self.containers) - set(ACCEPTABLE))
        if unknown or not self.containers:
            raise ValueError(
                f"containers must be a non-empty subset of {', '.join(ACCEPTABLE)}; got {unknown}"
            )

    def options(self) -> dict[str, str]:
        """AVFormatContext options for every open of an upload (ffprobe, ffmpeg, PyAV)."""
        return {"protocol_whitelist": "file", "format_whitelist": ",".join(self.containers)}

    def input_args(self, demuxer: str | None = None) -> list[str]:
        """ffmpeg/ffprobe input options; `demuxer` forces the one the probe found."""
        args = [arg for key, value in self.options().items() for arg in (f"-{key}", value)]
        return args + (["-f", demuxer] if demuxer else [])

    def demuxer(self, format_name: str) -> str | None:
        """The accepted demuxer behind a probed format name ("mov,mp4,m4a,3gp,3g2,mj2" → "mov");
        None when it is not accepted."""
        names = format_name.split(",")
        return next((name for name in self.containers if name in names), None)

    def describe(self) -> str:
        """The accepted containers, for error messages."""
        return ", ".join(ACCEPTABLE[name] for name in self.containers)


# Our own outputs (the fragmented top rung, the MP4 fallback) are MP4: read them as nothing else.
OWN_OUTPUT = InputPolicy(("mov",))
