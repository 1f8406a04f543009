"""MkDocs hook: the settings and errors references, generated from the code so they cannot drift.

Hand-written: MkDocs has no plugin that reads pydantic fields or scans a code base for error
codes, and both tables are a few lines over the standard library's `ast`.
"""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "reelout"
DOCS = ROOT / "docs"
SETTINGS_MARKER = "<!-- settings-table -->"
ERRORS_MARKER = "<!-- errors-table -->"
ERRORS_PAGE = "reference/errors.md"
SETTINGS_PAGE = "reference/settings.md"
CODE = re.compile(r"^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+$")
# upper-case strings in src that are not error codes: variable names, an OFREP reason, a
# substring the uploader looks for in an error message
NOT_CODES = {"TARGETING_MATCH", "UPLOAD_TOKEN", "XDG_DATA_HOME"}
NOT_CODE_PREFIXES = ("REELOUT_",)


def _import_settings() -> Any:
    if str(ROOT / "src") not in sys.path:
        sys.path.insert(0, str(ROOT / "src"))
    from reelout.config import Settings

    return Settings


# ---- settings ---------------------------------------------------------------------------------


def _size(value: int) -> str:
    for unit, size in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if value >= size and value % size == 0:
            return f" ({value // size} {unit})"
    return ""


def _duration(name: str, value: float) -> str:
    if name.endswith("_seconds") and value >= 3600 and value % 3600 == 0:
        return f" ({int(value // 3600)} h)"
    return ""


def _shown(value: object) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, Path) and not value.is_absolute():
        return f"./{value}"
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def setting_default(name: str, info: Any) -> str:
    """The default as a person reads it: unset, a list as its variable would spell it, a size."""
    if info.default_factory is not None:
        value = info.default_factory()
        if not isinstance(value, list):  # computed from the machine: the meaning says how
            return "computed"
        return f"`{_shown(value)}`" if value else "*(none)*"
    value = info.default
    if value is None:
        return "unset"
    text = f"`{_shown(value)}`"
    if isinstance(value, int | float) and not isinstance(value, bool):
        hint = _size(int(value)) if ("bytes" in name or "size" in name) else ""
        text += hint or _duration(name, value)
    return text


def setting_bounds(info: Any) -> str:
    words = {"ge": "≥", "gt": ">", "le": "≤", "lt": "<", "min_length": "at least"}
    bounds = []
    for item in info.metadata:
        for attr, word in words.items():
            if getattr(item, attr, None) is not None:
                bounds.append(f"{word} {_shown(getattr(item, attr))}")
    return f"; {', '.join(bounds)}" if bounds else ""


def settings_rows() -> list[tuple[str, str, str]]:
    """(variable, default, meaning) for every setting, in the order of `Settings`."""
    settings = _import_settings()
    return [
        (
            f"REELOUT_{name.upper()}",
            setting_default(name, info) + setting_bounds(info),
            info.description or "",
        )
        for name, info in settings.model_fields.items()
    ]


def _cell(text: str) -> str:
    """Text inside a Markdown table cell: a `|` would end the cell, a line break the row."""
    return " ".join(text.split()).replace("|", "\\|")


def settings_table() -> str:
    lines = ["| Variable | Default | Meaning |", "|---|---|---|"]
    lines += [
        f"| `{var}` | {default} | {_cell(meaning)} |" for var, default, meaning in settings_rows()
    ]
    return "\n".join(lines)


# ---- errors -----------------------------------------------------------------------------------


@dataclass
class ErrorCode:
    """One code found in the source: where it is used and the HTTP status when the code says."""

    code: str
    statuses: set[int] = field(default_factory=set)
    areas: set[str] = field(default_factory=set)


def _class_statuses() -> dict[str, int]:
    """Status of each error class named in the source (`class X(...): status = N`), by name."""
    statuses: dict[str, int] = {}
    bases: dict[str, list[str]] = {}
    for tree, _ in _trees():
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                bases[node.name] = [b.id for b in node.bases if isinstance(b, ast.Name)]
                status = _assigned(node, "status")
                if isinstance(status, int):
                    statuses[node.name] = status
    for name in list(bases):
        seen, todo = set(), list(bases[name])
        while name not in statuses and todo:
            base = todo.pop(0)
            if base in statuses:
                statuses[name] = statuses[base]
            elif base not in seen:
                seen.add(base)
                todo += bases.get(base, [])
    return statuses


def _assigned(node: ast.ClassDef, attr: str) -> object:
    for item in node.body:
        targets = (
            item.targets
            if isinstance(item, ast.Assign)
            else [item.target]
            if isinstance(item, ast.AnnAssign)
            else []
        )
        value = getattr(item, "value", None)
        named = any(isinstance(t, ast.Name) and t.id == attr for t in targets)
        if named and isinstance(value, ast.Constant):
            return value.value
    return None


def _trees() -> Iterator[tuple[ast.Module, str]]:
    for path in sorted(SRC.rglob("*.py")):
        area = path.relative_to(SRC).parts[0].removesuffix(".py")
        yield ast.parse(path.read_text(encoding="utf-8")), area


def _is_code(value: object) -> bool:
    return (
        isinstance(value, str)
        and CODE.match(value) is not None
        and value not in NOT_CODES
        and not value.startswith(NOT_CODE_PREFIXES)
    )


def _call_status(call: ast.Call, classes: dict[str, int]) -> int | None:
    for keyword in call.keywords:
        if keyword.arg == "status" and isinstance(keyword.value, ast.Constant):
            value = keyword.value.value
            return value if isinstance(value, int) else None
    name = call.func.id if isinstance(call.func, ast.Name) else getattr(call.func, "attr", None)
    return classes.get(name) if isinstance(name, str) else None


def error_codes() -> dict[str, ErrorCode]:
    """Every error code the source names: `code="…"`, `code = "…"`, `ERR_…` and the rest."""
    classes = _class_statuses()
    found: dict[str, ErrorCode] = {}
    for tree, area in _trees():
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and _is_code(node.value):
                found.setdefault(str(node.value), ErrorCode(str(node.value))).areas.add(area)
            elif isinstance(node, ast.Call) and (status := _call_status(node, classes)):
                # Error(..., code="X") and, for errors built from a code, Error("X", message)
                named = [k.value for k in node.keywords if k.arg == "code"] + node.args[:1]
                for value in (getattr(n, "value", None) for n in named):
                    if _is_code(value):
                        found.setdefault(str(value), ErrorCode(str(value))).statuses.add(status)
            elif isinstance(node, ast.ClassDef):
                code, status = _assigned(node, "code"), classes.get(node.name)
                if _is_code(code) and status is not None:
                    found.setdefault(str(code), ErrorCode(str(code))).statuses.add(status)
    return dict(sorted(found.items()))


def _pages() -> dict[str, str]:
    """Each page's source; the settings page with the descriptions its table is made of."""
    pages = {
        path.relative_to(DOCS).as_posix(): path.read_text(encoding="utf-8")
        for path in sorted(DOCS.rglob("*.md"))
    }
    pages[SETTINGS_PAGE] += "\n".join(meaning for _, _, meaning in settings_rows())
    return pages


def documented_in(code: str, pages: dict[str, str] | None = None) -> list[str]:
    """The pages whose source mentions `CODE` (in backticks or in a code block)."""
    pattern = re.compile(rf"(?<![A-Z0-9_]){re.escape(code)}(?![A-Z0-9_])")
    return [name for name, text in (pages or _pages()).items() if pattern.search(text)]


def _link(page: str) -> str:
    here = Path(ERRORS_PAGE).parent
    target = Path(page)
    up = "../" * len(here.parts)
    title = target.with_suffix("").as_posix().removesuffix("/index")
    return f"[{title}]({up}{target.as_posix()})"


def errors_table() -> str:
    pages = _pages()
    lines = ["| Code | HTTP status | Area | Documented in |", "|---|---|---|---|"]
    for code, found in error_codes().items():
        statuses = ", ".join(str(s) for s in sorted(found.statuses)) or "—"
        areas = ", ".join(sorted(found.areas))
        where = ", ".join(_link(p) for p in documented_in(code, pages)) or "—"
        lines.append(f"| `{code}` | {statuses} | {areas} | {where} |")
    return "\n".join(lines)


# ---- the hook ---------------------------------------------------------------------------------


def on_page_markdown(markdown: str, **_: object) -> str:
    if SETTINGS_MARKER in markdown:
        markdown = markdown.replace(SETTINGS_MARKER, settings_table())
    if ERRORS_MARKER in markdown:
        markdown = markdown.replace(ERRORS_MARKER, errors_table())
    return markdown
