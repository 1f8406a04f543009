"""The console's browser libraries ship inside the package: a clean clone (and a wheel built from
it on a machine without npm) has every one, with its licence."""

from __future__ import annotations

import subprocess
from pathlib import Path

from reelout.web.pages import LIBRARIES, VENDOR_DIR

ROOT = Path(__file__).resolve().parents[2]


def test_every_console_library_and_its_licence_is_committed() -> None:
    tracked = subprocess.run(
        ["git", "ls-files", str(VENDOR_DIR.relative_to(ROOT))],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    names = {Path(path).name for path in tracked}
    for library in LIBRARIES:
        assert library.file in names, f"{library.file} is not in git: a wheel would lack it"
        assert f"{library.package}.LICENSE" in names, f"{library.package}'s licence is not in git"
        assert (VENDOR_DIR / library.file).stat().st_size > 10_000
