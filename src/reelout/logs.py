"""Log set-up for `serve` and `worker`: Rich on a terminal, plain lines everywhere else.

Rich renders each record as a table, which costs about half a millisecond: fine for a person
watching a terminal, too much for an access log line per upload chunk in production, where
logs go to a file or journald anyway. `auto` picks Rich only when stderr is a terminal.
"""

from __future__ import annotations

import logging
import sys
from typing import Literal

LogFormat = Literal["auto", "rich", "plain"]
PLAIN_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def _handler(fmt: LogFormat) -> logging.Handler:
    if fmt == "rich" or (fmt == "auto" and sys.stderr.isatty()):
        from rich.console import Console
        from rich.logging import RichHandler

        handler: logging.Handler = RichHandler(
            console=Console(stderr=True), show_path=False, rich_tracebacks=False
        )
        handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
        return handler
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(PLAIN_FORMAT))
    return handler


def configure(level: str, fmt: LogFormat = "auto") -> None:
    """Send every logger's records at `level` or above to stderr in the chosen format."""
    logging.basicConfig(level=level.upper(), handlers=[_handler(fmt)], force=True)
    logging.getLogger("alembic").setLevel(logging.WARNING)
