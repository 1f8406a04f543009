"""Every console page, checked by axe-core in Chromium: labelled controls, named buttons and
links, valid ARIA, no nested controls; and every action is on an element the keyboard reaches."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from tests.support.live import LiveServer
from tests.support.settings import ADMIN_TOKEN
from tests.web.conftest import Clips
from tests.web.test_video_pages import settled, upload

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("console-browser")]
AXE = Path(__file__).resolve().parents[1] / "js" / "node_modules" / "axe-core" / "axe.min.js"
# What "labelled controls, keyboard reachable" means, as axe-core rules (colour contrast and
# the like are a matter of taste, not of reaching and naming a control).
RULES = [
    "label",
    "select-name",
    "button-name",
    "link-name",
    "input-button-name",
    "aria-allowed-attr",
    "aria-required-attr",
    "aria-valid-attr",
    "aria-valid-attr-value",
    "aria-hidden-focus",
    "nested-interactive",
    "scrollable-region-focusable",
    "duplicate-id-aria",
    "document-title",
    "html-has-lang",
    "image-alt",
    "list",
    "listitem",
    "tabindex",
    "aria-prohibited-attr",
    "landmark-unique",
]
PAGES = [
    "",
    "/videos",
    "/videos/{uid}",
    "/flags/development",
    "/flags/development/use_tus_upload/edit",
    "/flags/development/revisions",
    "/flags/development/promote",
    "/flags/development/schedules",
    "/flags/development/stale",
    "/flags/development/exposures?flag=use_tus_upload",
    "/kpis",
    "/kpis?environment=production&flag=use_tus_upload&window=1h",
    "/alerts",
    "/rollouts",
    "/keys",
    "/webhooks",
    "/audit",
]
# Elements that act through htmx but are not controls a keyboard reaches on its own.
UNREACHABLE_ACTIONS = """() => [...document.querySelectorAll(
    '[hx-get], [hx-post], [hx-put], [hx-patch], [hx-delete]')]
  .filter((el) => !el.matches('a[href], button, input, select, textarea, form')
                  && !(el.getAttribute('hx-trigger') || '').match(/load|every|revealed/))
  .map((el) => el.outerHTML.slice(0, 120))"""


def axe_violations(page: Page) -> list[str]:
    """axe-core's findings of RULES on the page as it is now (`rule: targets` each)."""
    if not AXE.is_file():
        pytest.fail("axe-core is not installed: run `make node` (tests/js/package.json)")
    page.add_script_tag(path=str(AXE))
    found: list[str] = page.evaluate(
        """async (rules) => (await axe.run(document, {runOnly: {type: 'rule', values: rules}}))
             .violations.map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`)""",
        RULES,
    )
    return found


@pytest.fixture(scope="module")
def ready_uid(server: LiveServer, clips: Clips) -> str:
    with server.client() as api:
        uid = upload(api, "AX-1", "work", clips("tiny").read_bytes(), "dock.mp4")
        return str(settled(api, uid)["uid"])


@pytest.fixture
def page(browser: Browser, server: LiveServer) -> Iterator[Page]:
    if not AXE.is_file():
        pytest.fail("axe-core is not installed: run `make node` (tests/js/package.json)")
    context = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
    page = context.new_page()
    page.goto(server.url + "/console/login")
    page.fill("#key", ADMIN_TOKEN)
    page.click("#login")
    page.wait_for_url(server.url + "/console")
    yield page
    context.close()


@pytest.mark.parametrize("path", PAGES)
def test_every_control_is_named_and_reachable(
    page: Page, server: LiveServer, ready_uid: str, path: str
) -> None:
    page.goto(server.url + "/console" + path.format(uid=ready_uid))
    page.wait_for_load_state("networkidle")
    assert page.locator("main").count() == 1, page.content()[:500]
    violations = axe_violations(page)
    assert violations == [], f"{path}: {violations}"
    assert page.evaluate(UNREACHABLE_ACTIONS) == []
