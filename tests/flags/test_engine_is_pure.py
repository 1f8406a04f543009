"""The pure flag engine (reelout.flags.engine) and the package's re-exports import neither the
database nor the web framework (checked in a fresh interpreter, so nothing is loaded already)."""

from __future__ import annotations

import json
import subprocess
import sys

FORBIDDEN = ("sqlalchemy", "fastapi", "starlette", "reelout.db", "reelout.runtime")

LOAD_ENGINE = """
import importlib, json, pkgutil, sys
import reelout.flags.engine as engine
for module in pkgutil.iter_modules(engine.__path__):
    importlib.import_module("reelout.flags.engine." + module.name)
import reelout.flags
print(json.dumps(sorted(sys.modules)))
"""


def test_the_engine_imports_no_database_and_no_web_framework() -> None:
    done = subprocess.run(
        [sys.executable, "-c", LOAD_ENGINE], capture_output=True, text=True, check=True
    )
    loaded = json.loads(done.stdout)
    assert "reelout.flags.engine.evaluator" in loaded
    impure = [m for m in loaded if m.split(".")[0] in FORBIDDEN or m.startswith(FORBIDDEN)]
    assert impure == []
