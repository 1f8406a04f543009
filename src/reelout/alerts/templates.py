"""Annotation templates (pure): Jinja2 in its sandbox, since a rule's text comes from its author's
hands through the API, with the few filters an on-call message needs.

Templates are checked when a rule is stored (`check`) and rendered when an alert changes state
(`render`); a template that fails at render time falls back to its source text plus the error,
so a notification always goes out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

MAX_TEMPLATE_CHARS = 2000
MAX_RENDERED_CHARS = 4000


def percent(value: object) -> str:
    """0.0612 → "6.12%"; anything not a number as itself."""
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        return "n/a" if value is None else str(value)
    return f"{value * 100:.3g}%"


def number(value: object) -> str:
    """A count or ratio as a person reads it: 1204, 0.0312, 1.2e+06."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return "n/a" if value is None else str(value)
    return f"{value:.6g}"


def duration(value: object) -> str:
    """Seconds (or a timedelta) as "1h30m"."""
    seconds = value.total_seconds() if isinstance(value, timedelta) else value
    if not isinstance(seconds, int | float) or isinstance(seconds, bool):
        return str(value)
    return spell_duration(timedelta(seconds=seconds))


def spell_duration(value: timedelta) -> str:
    """A duration in the rule format's words: 0s, 45s, 5m, 1h30m, 2d."""
    left = int(value.total_seconds())
    if left == 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if left >= size and (unit != "d" or left >= 2 * size):  # 24h reads better than 1d
            parts.append(f"{left // size}{unit}")
            left %= size
    return "".join(parts)


def scope(labels: object) -> str:
    """Labels as "environment=production flag=new-uploader variant=on" (sorted)."""
    if not isinstance(labels, Mapping):
        return str(labels)
    shown = [f"{k}={v}" for k, v in sorted(labels.items()) if k not in ("alertname", "severity")]
    return " ".join(shown) or "everywhere"


def when(value: object) -> str:
    """A time as "2026-01-01 09:00 UTC"."""
    return f"{value:%Y-%m-%d %H:%M UTC}" if isinstance(value, datetime) else str(value)


@lru_cache(maxsize=1)
def _environment() -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
    env.filters.update(pct=percent, num=number, duration=duration, scope=scope, when=when)
    return env


@lru_cache(maxsize=512)
def _compiled(source: str) -> Template:
    return _environment().from_string(source)


def check(source: str) -> str | None:
    """Why `source` is not a usable template, or None."""
    if len(source) > MAX_TEMPLATE_CHARS:
        return f"a template has at most {MAX_TEMPLATE_CHARS} characters, this one {len(source)}"
    try:
        _compiled(source)
    except TemplateError as exc:
        return f"the template does not parse: {exc}"
    return None


def render(source: str, context: Mapping[str, Any]) -> str:
    """The template filled in; on an error, the source and what went wrong (never raises)."""
    try:
        text = _compiled(source).render(**context)
    except (TemplateError, ArithmeticError, TypeError, ValueError) as exc:
        text = f"{source} [template error: {exc}]"
    return text[:MAX_RENDERED_CHARS]
