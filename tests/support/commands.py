"""The `reelout` command in a child process: where it is and the environment it runs in."""

from __future__ import annotations

import os
import sys
from pathlib import Path

REELOUT = str(Path(sys.executable).parent / "reelout")


def reelout_env(data_dir: Path, **env: str) -> dict[str, str]:
    """This process's environment for a `reelout` child on `data_dir`, plus `env`: no database
    URL from outside, so it uses the folder's own database unless `env` names one."""
    child = {**os.environ, "REELOUT_DATA_DIR": str(data_dir)}
    child.pop("REELOUT_DATABASE_URL", None)
    child.update(env)
    return child
