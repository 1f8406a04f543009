"""The Keys, Webhooks and Audit pages over HTTP: each page and action, CSRF, errors in place,
and every console action recorded in the audit trail as the signed-in key."""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest

from tests.support.live import LiveServer, live_server_fixture
from tests.web.test_login import login

server = live_server_fixture(scope="module", folder="admin", webhook_allow_networks="127.0.0.0/8")


@pytest.fixture
def web(server: LiveServer) -> Iterator[httpx.Client]:
    """A logged-in console client: session cookie set, CSRF header sent with every request."""
    with httpx.Client(base_url=server.url, timeout=10, follow_redirects=False) as client:
        cookie, csrf = login(client)
        client.headers.update(cookie | {"X-CSRF-Token": csrf, "HX-Request": "true"})
        yield client


def action(web: httpx.Client, path: str, trigger: str, **kwargs: object) -> httpx.Response:
    return web.post(path, headers={"HX-Trigger": trigger}, **kwargs)  # type: ignore[arg-type]


def audit_actions(server: LiveServer, **query: str) -> list[tuple[str, str]]:
    with server.client() as api:
        entries = api.get("/api/v1/audit/all", params=query).json()["entries"]
    return [(e["action"], e["actor"]) for e in entries]


def test_the_pages_are_in_the_navigation_and_need_a_session(
    web: httpx.Client, server: LiveServer
) -> None:
    page = web.get("/console/keys")
    assert page.status_code == 200
    for label, path in [("Keys", "/keys"), ("Webhooks", "/webhooks"), ("Audit", "/audit")]:
        assert f'<a href="/console{path}"' in page.text and f">{label}</a>" in page.text
    assert 'href="/console/keys" aria-current="page"' in page.text
    with httpx.Client(base_url=server.url, follow_redirects=False) as anonymous:
        for path in ("/console/keys", "/console/webhooks", "/console/audit"):
            assert anonymous.get(path).headers["location"] == "/console/login"


def test_create_a_key_shows_its_secret_once_and_revoke_records_the_reason(
    web: httpx.Client, server: LiveServer
) -> None:
    made = action(
        web, "/console/keys", "key-create",
        data={"name": "tv-app", "scope": "client", "environment": "production"},
    )  # fmt: skip
    assert made.status_code == 200, made.text
    secret = re.search(r'<code id="new-secret">([^<]+)</code>', made.text)
    assert secret and secret.group(1).startswith("rlo_client_")
    assert f'data-copy="{secret.group(1)}"' in made.text and "shown only this once" in made.text
    with httpx.Client(base_url=server.url) as app:
        ofrep = app.post(
            "/ofrep/v1/evaluate/flags", json={"context": {"targetingKey": "u1"}},
            headers={"Authorization": f"Bearer {secret.group(1)}"},
        )  # fmt: skip
        assert ofrep.status_code == 200, ofrep.text
    key_id = re.search(r'<tr data-key="([^"]+)">\s*<td data-label="Name">tv-app', made.text)
    assert key_id
    listed = web.get("/console/keys")
    assert "tv-app" in listed.text and secret.group(1) not in listed.text  # never again

    revoke = f"revoke-{key_id.group(1)}"
    # a browser sends an answer beyond Latin-1 percent-encoded, and says so
    gone = web.post(
        f"/console/keys/{key_id.group(1)}/revoke",
        headers={
            "HX-Trigger": revoke,
            "HX-Prompt": quote("leaked 🔑 in a 日本 build"),
            "HX-Prompt-URI-AutoEncoded": "true",
        },
    )
    assert gone.status_code == 200 and f'id="{revoke}"' not in gone.text
    assert "tv-app" in web.get("/console/keys?revoked=true").text
    assert "tv-app" not in web.get("/console/keys").text
    with server.client() as api:
        entries = api.get("/api/v1/audit/all", params={"target": key_id.group(1)}).json()
    assert [(e["action"], e["actor"], e["reason"]) for e in entries["entries"]] == [
        ("key.revoked", "bootstrap", "leaked 🔑 in a 日本 build"),
        ("key.created", "bootstrap", None),
    ]


def test_an_error_is_shown_in_words_where_the_action_was_taken(web: httpx.Client) -> None:
    reply = action(
        web, "/console/keys", "key-create", data={"scope": "admin", "environment": "production"}
    )
    assert reply.status_code == 400
    assert reply.headers["hx-retarget"] == "#key-create-error"
    assert "<strong>INVALID_ENVIRONMENT</strong>: admin keys are not tied" in reply.text
    missing = action(web, "/console/keys/nope/revoke", "revoke-nope")
    assert missing.status_code == 404 and "KEY_NOT_FOUND" in missing.text


def test_an_action_without_the_csrf_token_is_refused(web: httpx.Client) -> None:
    reply = web.post(
        "/console/keys",
        data={"scope": "client", "environment": "production"},
        headers={"X-CSRF-Token": "forged", "HX-Trigger": "key-create"},
    )
    assert reply.status_code == 403 and "CSRF_TOKEN_INVALID" in reply.text


def test_webhook_endpoints_test_delivery_rotate_delete_and_the_log(
    web: httpx.Client, server: LiveServer
) -> None:
    made = action(
        web, "/console/webhooks", "webhook-create",
        data={"url": "http://127.0.0.1:9/hook", "events": ["video.ready"], "description": "crm"},
    )  # fmt: skip
    assert made.status_code == 200, made.text
    assert re.search(r'<code id="new-secret">whsec_[^<]+</code>', made.text)
    endpoint = re.search(r'<tr data-endpoint="([^"]+)">', made.text)
    assert endpoint
    hook = endpoint.group(1)

    tested = action(web, f"/console/webhooks/{hook}/test", f"test-{hook}")
    assert tested.status_code == 200 and "Test delivery wd_" in tested.text
    page = web.get("/console/webhooks")
    assert "webhook.test" in page.text and "http://127.0.0.1:9/hook" in page.text
    delivery = re.search(r'<tbody id="delivery-([^"]+)" data-state="pending">', page.text)
    assert delivery
    attempts = web.get(f"/console/webhooks/deliveries/{delivery.group(1)}")
    assert attempts.status_code == 200 and "No attempt yet" in attempts.text
    busy = action(
        web,
        f"/console/webhooks/deliveries/{delivery.group(1)}/resend",
        f"resend-{delivery.group(1)}",
    )
    assert busy.status_code == 409 and "DELIVERY_PENDING" in busy.text
    assert busy.headers["hx-retarget"] == f"#resend-{delivery.group(1)}-error"
    assert web.get("/console/webhooks?state=failed").text.count("webhook.test") == 0

    rotated = action(web, f"/console/webhooks/{hook}/rotate-secret", f"rotate-{hook}")
    assert rotated.status_code == 200 and 'id="new-secret">whsec_' in rotated.text
    bad = action(web, "/console/webhooks", "webhook-create", data={"url": "ftp://x"})
    assert bad.status_code == 400 and "INVALID_WEBHOOK_URL" in bad.text
    deleted = web.post(
        f"/console/webhooks/{hook}/delete",
        headers={"HX-Trigger": f"delete-{hook}", "HX-Prompt": "done"},
    )
    assert deleted.status_code == 200 and hook not in deleted.text
    assert audit_actions(server, area="webhooks", target=hook) == [
        ("webhook.deleted", "bootstrap"),
        ("webhook.secret_rotated", "bootstrap"),
        ("webhook.tested", "bootstrap"),
        ("webhook.created", "bootstrap"),
    ]


def test_the_audit_page_lists_filters_and_pages(web: httpx.Client) -> None:
    for n in range(3):
        name = f"audit-page-{n}"
        body = {"name": name, "scope": "server", "environment": "preview"}
        assert action(web, "/console/keys", "key-create", data=body).status_code == 200
    page = web.get("/console/audit", params={"area": "keys", "env": "preview"})
    assert page.status_code == 200
    rows = re.findall(r'<tr data-action="([^"]+)" data-area="([^"]+)">', page.text)
    assert rows and all(row == ("key.created", "keys") for row in rows)
    assert "{&#34;op&#34;: &#34;add&#34;, &#34;path&#34;: &#34;/id&#34;" in page.text
    assert 'href="/console/audit" aria-current="page"' in page.text
    nothing = web.get("/console/audit", params={"actor": "nobody"})
    assert "No changes match." in nothing.text
    bad = web.get("/console/audit", params={"since": "yesterday"})
    assert bad.status_code == 400 and "INVALID_TIME" in bad.text
    first = web.get("/console/audit", params={"area": "keys", "limit": "2"})
    older = re.search(r'<a id="audit-older" href="([^"]+)"', first.text)
    assert older, "three keys made: a second page"
    second = web.get(older.group(1).replace("&amp;", "&"))
    times = re.compile(r'<time datetime="([^"]+)"')
    assert second.status_code == 200
    assert len(times.findall(first.text)) == 2
    assert max(times.findall(second.text)) <= min(times.findall(first.text))
