"""The wheel is the product: built without npm and installed into a clean venv, it serves a
complete console (its browser libraries are package data), in a real browser."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser

from reelout.web.pages import LIBRARIES
from tests.support.live import ServerProcess
from tests.web.conftest import open_console

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("console-browser")]
ROOT = Path(__file__).resolve().parents[2]


def no_npm_path(folder: Path) -> str:
    """A PATH with what `reelout serve` runs (ffmpeg, ffprobe) and no npm, node or pip."""
    folder.mkdir()
    for tool in ("ffmpeg", "ffprobe"):
        found = shutil.which(tool)
        if found:
            (folder / tool).symlink_to(found)
    return str(folder)


def build_wheel(out: Path, path: str) -> Path:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{path}"}
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--wheel-dir",
            str(out),
            str(ROOT),
        ],
        env=env,
        check=True,
        capture_output=True,
    )
    (wheel,) = out.glob("reelout-*.whl")
    return wheel


def clean_venv(folder: Path, wheel: Path) -> Path:
    """A new venv with only the wheel installed; its dependencies are read from this test's
    environment (appended to sys.path, so the checkout's editable install is not)."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True)
    lib = next((folder / "lib").glob("python3*")) / "site-packages"
    (lib / "zz_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(folder / "bin" / "python"),
            "install",
            "--quiet",
            "--no-deps",
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    return folder / "bin" / "reelout"


def test_a_wheel_built_without_npm_serves_the_whole_console(
    tmp_path: Path, browser: Browser
) -> None:
    path = no_npm_path(tmp_path / "bin")
    wheel = build_wheel(tmp_path / "dist", path)
    names = set(zipfile.ZipFile(wheel).namelist())
    for lib in LIBRARIES:
        assert f"reelout/web/static/vendor/{lib.file}" in names
        assert f"reelout/web/static/vendor/{lib.package}.LICENSE" in names
    assert "reelout/web/static/sdk/telemetry.js" in names  # served at /sdk/telemetry.js

    reelout = clean_venv(tmp_path / "venv", wheel)
    alone = {"PATH": path, "PYTHONPATH": ""}  # nothing from the checkout
    where = subprocess.run(
        [str(reelout.with_name("python")), "-c", "import reelout; print(reelout.__file__)"],
        env=alone,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert where.startswith(str(tmp_path / "venv")), f"reelout came from {where}"

    (tmp_path / "data").mkdir()
    server = ServerProcess(tmp_path / "data", tmp_path / "serve.log", env=alone, reelout=reelout)
    try:
        console = open_console(browser, server.url)
        page = console.page
        assert page.query_selector("#libs-missing") is None
        assert page.evaluate("() => [typeof tus, typeof Hls, typeof htmx]") == [
            "object",
            "function",
            "object",
        ]
        assert page.evaluate("() => tus.isSupported && Hls.isSupported()")
        assert page.evaluate("() => typeof window.reeloutTelemetry.track") == "function"
        sdk = httpx.get(server.url + "/sdk/telemetry.js", timeout=10)
        assert sdk.status_code == 200 and "createTelemetry" in sdk.text
        console.context.close()
    finally:
        server.kill()
