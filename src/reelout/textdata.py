"""YAML or JSON text as data (pure): JSON by the JSON parser, YAML without anchors and aliases."""

from __future__ import annotations

import json
from typing import Any

import yaml


class Unreadable(ValueError):
    """Text that is neither valid YAML nor JSON; the message is the parser's first line."""


class _NoAliases(yaml.SafeLoader):
    """YAML without anchors and aliases: a document here needs none, and they are how a small
    text expands into a huge document."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            raise yaml.composer.ComposerError(None, None, "aliases (*name) are not accepted", None)
        return super().compose_node(parent, index)


def read_text(raw: str | bytes) -> tuple[Any, bool]:
    """The data of YAML or JSON text (JSON is YAML too; a text that opens with `{` or `[` is
    read by the JSON parser) and whether it was read as JSON; Unreadable otherwise."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        if text.lstrip().startswith(("{", "[")):
            return json.loads(text), True
        return yaml.load(text, Loader=_NoAliases), False  # noqa: S506 (a SafeLoader subclass)
    except (ValueError, yaml.YAMLError, RecursionError) as exc:
        why = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
        raise Unreadable(why) from None
