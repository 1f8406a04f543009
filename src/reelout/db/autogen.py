"""Developer tool: write (or rewrite) a migration from the models: `python -m reelout.db.autogen`."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from alembic import command

from reelout.db.engine import Database
from reelout.db.migrate import MIGRATIONS, alembic_config, upgrade


def main(message: str = "initial", rev_id: str = "0001") -> None:
    target = MIGRATIONS / "versions"
    existing = list(target.glob(f"{rev_id}_*.py"))
    for path in existing:
        path.unlink()
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite:///{Path(tmp) / 'autogen.db'}")
        upgrade(db)
        command.revision(alembic_config(db), message=message, autogenerate=True, rev_id=rev_id)
        db.dispose()
    for path in target.glob(f"{rev_id}_*.py"):
        tools = Path(sys.executable).parent
        subprocess.run([str(tools / "ruff"), "check", "--fix", "--quiet", str(path)], check=False)
        subprocess.run([str(tools / "ruff"), "format", "--quiet", str(path)], check=False)


if __name__ == "__main__":
    main(*sys.argv[1:])
