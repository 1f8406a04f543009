"""Log set-up for `serve` and `worker`: Rich on a terminal, plain lines everywhere else, and
secrets in logged URLs redacted.

Rich renders each record as a table, which costs about half a millisecond: fine for a person
watching a terminal, too much for an access log line per upload chunk in production, where
logs go to a file or journald anyway. `auto` picks Rich only when stderr is a terminal.

Playback (`?token=`) and event-stream URLs carry secrets, and logs are read by more people and
kept longer than keys. The redaction is written here because it must keep every other byte of
the URL as the client sent it (urllib's parse/encode round trip would re-encode them), and it
is a split on `&` and `=`.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Literal

LogFormat = Literal["auto", "rich", "plain"]
PLAIN_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
ACCESS_LOGGER = "uvicorn.access"
REDACTED = "REDACTED"
# query parameters whose value is a secret: token, key, sig(nature), secret, password, auth…,
# alone or as the last word of a name (access_token, api-key, X-Amz-Signature)
SECRET_PARAM = re.compile(
    r"(?:^|[-_.])(?:token|key|sig|signature|secret|password|passwd|auth|authorization|"
    r"credential|session|code)s?$",
    re.IGNORECASE,
)


def _secret_name(raw_name: str) -> bool:
    from urllib.parse import unquote_plus

    return SECRET_PARAM.search(unquote_plus(raw_name)) is not None


def redact_url(url: str) -> str:
    """`url` with the value of every secret-looking query parameter replaced by REDACTED."""
    path, mark, query = url.partition("?")
    if not mark:
        return url
    parts = []
    for part in query.split("&"):
        name, eq, _ = part.partition("=")
        parts.append(f"{name}={REDACTED}" if eq and _secret_name(name) else part)
    return f"{path}?{'&'.join(parts)}"


class RedactUrls(logging.Filter):
    """Rewrites the URL argument of uvicorn's access records (client, method, path, version,
    status) so no secret from a query string reaches a handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], redact_url(args[2]), *args[3:])
        return True


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
    access = logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(known, RedactUrls) for known in access.filters):
        access.addFilter(RedactUrls())
