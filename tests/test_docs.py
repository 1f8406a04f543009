"""The docs site documents every setting and every error code, from the code, so it cannot drift."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest
import typer
from typer.core import TyperGroup

from reelout.cli import app as cli_app
from reelout.config import Settings
from reelout.web.routes import PAGES

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def load_hooks() -> ModuleType:
    spec = importlib.util.spec_from_file_location("reelout_docs_hooks", DOCS / "hooks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module


hooks = load_hooks()


def test_every_setting_has_a_description() -> None:
    missing = [
        f"REELOUT_{name.upper()}"
        for name, info in Settings.model_fields.items()
        if not (info.description or "").strip()
    ]
    assert missing == [], f"give these a Field(description=...) in reelout/config.py: {missing}"


def test_every_setting_has_a_row_in_the_generated_reference() -> None:
    table = hooks.settings_table()
    rows = re.findall(r"^\| `(REELOUT_\w+)` \| (.+?) \| (.+) \|$", table, flags=re.MULTILINE)
    assert [name for name, _, _ in rows] == [f"REELOUT_{n.upper()}" for n in Settings.model_fields]
    assert all(default.strip() and meaning.strip() for _, default, meaning in rows)


def test_the_settings_page_shows_the_generated_table() -> None:
    page = (DOCS / "reference" / "settings.md").read_text(encoding="utf-8")
    assert hooks.SETTINGS_MARKER in page
    rendered = hooks.on_page_markdown(page)
    assert "`REELOUT_DATA_DIR` | `./data` |" in rendered
    assert "`REELOUT_TUS_MAX_SIZE` | `10737418240` (10 GiB); ≥ 0 |" in rendered
    assert "`REELOUT_DATABASE_URL` | unset |" in rendered
    assert "`REELOUT_MEDIA_CONCURRENCY` | computed; ≥ 1 |" in rendered


def test_the_error_scan_finds_codes_in_every_form_they_are_raised() -> None:
    codes = hooks.error_codes()
    assert codes["UPLOAD_TOO_LARGE"].statuses == {413}  # PayloadTooLarge(..., code="…")
    assert codes["CHECKSUM_MISMATCH"].statuses == {460}  # a ReeloutError subclass's `code`
    assert codes["INVALID_METADATA"].statuses == {400}  # TusHeaderError("…", message)
    assert codes["STALE_FLAG_SET"].statuses == {412}
    assert "ERR_NON_VIDEO" in codes and "WEBHOOK_HTTP_STATUS" in codes  # plain constants
    assert not any(code.startswith("REELOUT_") for code in codes)


def test_every_error_code_in_the_source_is_documented() -> None:
    pages = hooks._pages()
    undocumented = [code for code in hooks.error_codes() if not hooks.documented_in(code, pages)]
    assert undocumented == [], (
        f"document these codes on their area's page (or in docs/reference/errors.md): "
        f"{undocumented}"
    )


def test_a_code_named_nowhere_in_the_docs_is_caught() -> None:
    assert hooks.documented_in("NO_SUCH_CODE_ANYWHERE") == []
    assert hooks.documented_in("UPLOAD_TOO") == []  # a prefix of a documented code is not it
    assert "uploads.md" in hooks.documented_in("UPLOAD_TOO_LARGE")


def test_the_errors_page_shows_every_code() -> None:
    page = (DOCS / "reference" / "errors.md").read_text(encoding="utf-8")
    assert hooks.ERRORS_MARKER in page
    rendered = hooks.on_page_markdown(page)
    for code in hooks.error_codes():
        assert f"| `{code}` |" in rendered


@pytest.mark.parametrize(
    "page", ["README.md", *(str(p.relative_to(ROOT)) for p in DOCS.rglob("*.md"))]
)
def test_no_page_links_to_a_missing_file_of_the_repository(page: str) -> None:
    """MkDocs checks links between pages; the README's links into docs/ are checked here."""
    text = (ROOT / page).read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)#\s]+\.md)(?:#[^)]*)?\)", text):
        assert (ROOT / page).parent.joinpath(target).resolve().exists(), f"{page} → {target}"


def test_the_console_page_shows_a_screenshot_of_every_page() -> None:
    """Each navigation entry and each flags tab has its picture (`make screenshots`) on the
    console page, and the picture is there."""
    text = (DOCS / "console.md").read_text(encoding="utf-8")
    shown = set(re.findall(r"!\[[^\]]+\]\((console/[\w-]+\.png)\)", text))
    wanted = {f"console/{page.nav.section}.png" for page in PAGES} | {
        f"console/flags-{tab}.png"
        for tab in ("revisions", "promote", "schedules", "stale", "exposures")
    }
    wanted |= {"console/video.png", "console/flag-edit.png"}
    assert wanted <= shown, f"no screenshot on docs/console.md for {sorted(wanted - shown)}"
    missing = [name for name in shown if not (DOCS / name).is_file()]
    assert not missing, f"run `make screenshots`: {missing} are missing"


def _command_lines(group: TyperGroup, prefix: str) -> list[str]:
    lines = []
    for name, command in group.commands.items():
        if isinstance(command, TyperGroup):
            lines += _command_lines(command, f"{prefix} {name}")
        else:
            lines.append(f"{prefix} {name}")
    return lines


def test_every_command_is_documented() -> None:
    """Each `reelout …` command (and sub-command) is named on some page or in the README."""
    root = typer.main.get_command(cli_app)
    assert isinstance(root, TyperGroup)
    text = "\n".join([*hooks._pages().values(), (ROOT / "README.md").read_text(encoding="utf-8")])
    shown = set(re.findall(r"reelout(?: [a-z][a-z-]*)+", text))
    missing = [
        line
        for line in _command_lines(root, "reelout")
        if not any(seen == line or seen.startswith(line + " ") for seen in shown)
    ]
    assert missing == [], f"document these commands in docs/: {missing}"
