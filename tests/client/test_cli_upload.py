"""`reelout upload` through Typer's runner: summary, order stages, key lookup, clear failures."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner, Result

from reelout.cli import app
from reelout.client.cli_upload import parse_size
from tests.client.conftest import MakeSource, assert_stored, video
from tests.support.live import LiveServer
from tests.support.settings import ADMIN_TOKEN

runner = CliRunner()


def run(*args: str, **env: str | None) -> Result:
    return runner.invoke(app, ["upload", *args], env={"COLUMNS": "200", **env})


def test_upload_prints_a_summary(
    live_server: LiveServer, make_source: MakeSource, state: Path
) -> None:
    first, second = make_source("a.mp4"), make_source("b.webm", 1_000_000)
    result = run(
        str(first.path),
        str(second.path),
        "--server",
        live_server.url,
        "--key",
        ADMIN_TOKEN,
        "--chunk-size",
        "512KiB",
        "--parallel",
        "2",
    )
    assert result.exit_code == 0, result.output
    assert "2 uploaded, 0 failed" in result.output
    rows = [line for line in result.output.splitlines() if "sha256 verified" in line]
    assert [row.split("│")[1].strip() for row in rows] == ["a.mp4", "b.webm"]
    for row, src in zip(rows, (first, second), strict=True):
        uid = row.split("│")[2].strip()
        assert video(live_server, uid)["original_sha256"] == src.sha256


def test_order_stage_from_the_cli(
    live_server: LiveServer, make_source: MakeSource, state: Path
) -> None:
    src = make_source()
    result = run(
        str(src.path),
        "--order",
        "A-17",
        "--stage",
        "outbound",
        "--chunk-size",
        "1M",
        REELOUT_URL=live_server.url,
        REELOUT_KEY=ADMIN_TOKEN,
    )
    assert result.exit_code == 0, result.output
    with live_server.client() as api:
        [listed] = api.get("/api/v1/orders/A-17/outbound/videos").json()["videos"]
    assert listed["uid"] in result.output
    assert_stored(live_server, listed["uid"], _upload_url(live_server, listed["uid"]), src)


def _upload_url(server: LiveServer, uid: str) -> str:
    from sqlalchemy import select

    from reelout.uploads.models import Upload

    with server.runtime.db.session() as session:
        row = session.scalars(select(Upload).where(Upload.video_uid == uid)).one()
        return f"{server.files_url}{row.id}"


def test_bad_key_exits_1_and_says_what_to_do(
    live_server: LiveServer, make_source: MakeSource, state: Path
) -> None:
    result = run(str(make_source().path), "--server", live_server.url, "--key", "rlo_admin_nope")
    assert result.exit_code == 1
    assert "HTTP 401 (INVALID_KEY" in result.output
    assert "next: check --key / REELOUT_KEY" in result.output
    assert "0 uploaded, 1 failed" in result.output


def test_key_comes_from_data_admin_key(
    live_server: LiveServer,
    make_source: MakeSource,
    state: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    src = make_source()
    workdir = tmp_path / "work"
    (workdir / "data").mkdir(parents=True)
    (workdir / "data" / "admin.key").write_text(ADMIN_TOKEN + "\n")
    monkeypatch.chdir(workdir)
    ok = run(str(src.path), "--server", live_server.url, REELOUT_KEY=None, REELOUT_DATA_DIR=None)
    assert ok.exit_code == 0, ok.output
    (workdir / "data" / "admin.key").unlink()
    missing = run(
        str(src.path), "--server", live_server.url, REELOUT_KEY=None, REELOUT_DATA_DIR=None
    )
    assert missing.exit_code == 2
    assert "no key: pass --key, set REELOUT_KEY" in missing.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--chunk-size", "lots"), "'lots' is not a size; try 8MiB"),
        (("--chunk-size", "0"), "'0' is not a size"),
        (("--order", "A-1"), "--order and --stage go together"),
        (("--stage", "shipping", "--order", "A-1"), "'shipping' is not one of 'inbound'"),
        (("--parallel", "0"), "Invalid value for '--parallel'"),
    ],
)
def test_bad_options_are_usage_errors(
    make_source: MakeSource, args: tuple[str, ...], message: str
) -> None:
    result = run(str(make_source(size=10).path), "--key", "k", *args)
    assert result.exit_code == 2
    assert message in result.output


def test_a_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    result = run(str(tmp_path / "nope.mp4"), "--key", "k")
    assert result.exit_code == 2
    assert "does not exist" in result.output


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("8MiB", 8 * 1024**2),
        ("512k", 512 * 1024),
        ("512KiB", 524288),
        ("1.5MB", 1_500_000),
        ("1048576", 1048576),
        ("2 G", 2 * 1024**3),
        ("100b", 100),
    ],
)
def test_parse_size(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "MiB", "-1MiB", "8 parsecs", "0.1"])
def test_parse_size_rejects(text: str) -> None:
    with pytest.raises(typer.BadParameter):
        parse_size(text)
