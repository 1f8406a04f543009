"""The data folder made readable by its owner only: 0700 folder, 0600 database and key files.

Set by chmod at every start rather than by a process umask: a umask would also apply to
everything else the process writes (test runners, the published media nginx may send), and a
chmod also tightens a folder made by an older release. SQLite creates its -wal and -shm files
with the mode of the database file, so the database file is made 0600 before SQLite opens it.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from sqlalchemy.engine import make_url

from reelout.config import Settings

OWNER_ONLY_FOLDER = 0o700
# with REELOUT_MEDIA_ACCEL_REDIRECT nginx (another user) must reach media/ inside the folder:
# it may pass through, never list; everything but media/ stays owner-only
PASS_THROUGH_FOLDER = 0o711
OWNER_ONLY_FILE = 0o600
PRIVATE_SUBFOLDERS = ("uploads", "locks")
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")
log = logging.getLogger(__name__)


def sqlite_file(settings: Settings) -> Path | None:
    """The SQLite database file the settings name, or None (PostgreSQL, in memory)."""
    url = make_url(settings.resolved_database_url)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database)


def secure(settings: Settings) -> None:
    """Make (or tighten) the data folder, its private subfolders, key files and database file."""
    data = settings.data_dir
    data.mkdir(parents=True, exist_ok=True, mode=OWNER_ONLY_FOLDER)
    if os.name != "posix":
        return
    folder_mode = PASS_THROUGH_FOLDER if settings.media_accel_redirect else OWNER_ONLY_FOLDER
    _chmod(data, folder_mode)
    for name in PRIVATE_SUBFOLDERS:
        subfolder = data / name
        subfolder.mkdir(exist_ok=True, mode=OWNER_ONLY_FOLDER)
        _chmod(subfolder, OWNER_ONLY_FOLDER)
    for key_file in (settings.admin_key_file, settings.secret_key_file):
        if key_file.exists():
            _chmod(key_file, OWNER_ONLY_FILE)
    database = sqlite_file(settings)
    if database is not None:
        _private_database(database)


def _private_database(database: Path) -> None:
    """Create the file 0600 if missing (SQLite takes an empty file as an empty database)."""
    database.parent.mkdir(parents=True, exist_ok=True, mode=OWNER_ONLY_FOLDER)
    os.close(os.open(database, os.O_WRONLY | os.O_CREAT, OWNER_ONLY_FILE))
    _chmod(database, OWNER_ONLY_FILE)
    for suffix in SQLITE_SIDE_FILES:
        side = database.with_name(database.name + suffix)
        if side.exists():
            _chmod(side, OWNER_ONLY_FILE)


def _chmod(path: Path, mode: int) -> None:
    """Only the owner may change a mode: another user's file is left as it is, with a warning."""
    try:
        path.chmod(mode)
    except PermissionError:
        log.warning("cannot make %s mode %o (owned by another user); do it by hand", path, mode)
