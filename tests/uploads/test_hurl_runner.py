"""Tests of hurl_runner: the parser on the whole suite and snippets, the runner on a fake app."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from textwrap import dedent

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.support.hurl_runner import (
    SUITE_DIR,
    FileResult,
    HeaderAssert,
    HurlSyntaxError,
    StatusAssert,
    Target,
    advertised_extensions,
    build_request,
    collect,
    display_name,
    main,
    parse_text,
    run_captures,
    run_path,
    skip_reason,
)
from tests.support.live import free_port, running

SUITE_FILES = collect([SUITE_DIR / "tests"]) if (SUITE_DIR / "tests").is_dir() else []
AUTH = ("Authorization", "Bearer test-key")


def hurl(text: str) -> str:
    return dedent(text).lstrip("\n")


# --------------------------------------------------------------------------------------------
# The parser on the real suite


def test_the_suite_has_its_145_files() -> None:
    assert (SUITE_DIR / "tests").is_dir(), f"the shared tus suite is missing at {SUITE_DIR}"
    assert len(SUITE_FILES) == 145


@pytest.mark.parametrize("path", SUITE_FILES, ids=[display_name(p) for p in SUITE_FILES])
def test_every_suite_file_parses(path: Path) -> None:
    parsed = parse_text(path.read_text(encoding="utf-8"), display_name(path))
    assert parsed.entries
    assert all(entry.url.startswith("{{") for entry in parsed.entries)


def test_parse_only_cli_accepts_the_whole_suite(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--parse-only"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 146
    assert lines[-1] == "145 passed, 0 failed, 0 skipped"


def test_parse_only_cli_reports_a_broken_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "bad.hurl").write_text("GET {{base_url}}\n")
    assert main(["--parse-only", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "bad.hurl:1: method GET is outside the subset" in out
    assert out.splitlines()[-1] == "0 passed, 1 failed, 0 skipped"


def test_cli_needs_a_base_url_to_run() -> None:
    with pytest.raises(SystemExit):
        main([str(SUITE_DIR / "tests")])


# --------------------------------------------------------------------------------------------
# The parser on snippets


def test_request_line_headers_and_fenced_body() -> None:
    parsed = parse_text(
        hurl("""
        # a comment
        PATCH {{base_url}}/x

        Tus-Resumable: {{tus_version}}
        # comments may sit between headers
        Upload-Metadata:  key dGVzdA==
        ```
        Hello, tus!
        second line
        ```
        HTTP 204
        """)
    )
    (entry,) = parsed.entries
    assert (entry.method, entry.url, entry.line) == ("PATCH", "{{base_url}}/x", 2)
    assert entry.headers == [
        ("Tus-Resumable", "{{tus_version}}"),
        ("Upload-Metadata", "key dGVzdA=="),
    ]
    assert entry.body == "Hello, tus!\nsecond line\n"
    assert entry.status == 204


def test_body_forms_and_status_forms() -> None:
    parsed = parse_text(
        hurl("""
        POST {{base_url}}
        ```
        ```
        HTTP *
        OPTIONS {{base_url}}
        HEAD {{base_url}}
        ```
        Hello, tus!
        ```
        """)
    )
    empty, no_fence, last = parsed.entries
    assert (empty.body, empty.status) == ("", "*")
    assert (no_fence.body, no_fence.status) == (None, None)
    assert (last.body, last.status) == ("Hello, tus!\n", None)
    assert len((last.body or "").encode()) == 12


def test_captures_and_every_predicate() -> None:
    parsed = parse_text(
        hurl(r"""
        POST {{base_url}}
        HTTP 201
        [Captures]
        upload_url: header "Location"
        offset: header "Upload-Offset"
        [Asserts]
        header "Location" exists
        header "Upload-Length" not exists
        header "Upload-Offset" == "{{offset}}"
        header "Tus-Version" contains "1.0.0"
        header "Upload-Concat" startsWith "final"
        header "Tus-Version" matches "^[0-9]+\\.[0-9]+$"
        header "X" == "say \"hi\""
        status toString matches /^(200|20\/4)$/
        status < 500
        status >= 400
        """)
    )
    (entry,) = parsed.entries
    assert [(c.name, c.header) for c in entry.captures] == [
        ("upload_url", "Location"),
        ("offset", "Upload-Offset"),
    ]
    headers = [a for a in entry.asserts if isinstance(a, HeaderAssert)]
    assert [(a.predicate, a.value) for a in headers] == [
        ("exists", None),
        ("not exists", None),
        ("==", "{{offset}}"),
        ("contains", "1.0.0"),
        ("startsWith", "final"),
        ("matches", r"^[0-9]+\.[0-9]+$"),
        ("==", 'say "hi"'),
    ]
    statuses = [a for a in entry.asserts if isinstance(a, StatusAssert)]
    assert [(a.predicate, a.value) for a in statuses] == [
        ("matches", "^(200|20/4)$"),
        ("<", 500),
        (">=", 400),
    ]


def test_asserts_may_precede_captures_and_use_them() -> None:
    parsed = parse_text(
        hurl("""
        POST {{base_url}}
        HTTP 201
        [Asserts]
        header "Location" == "{{url}}"
        [Captures]
        url: header "Location"
        DELETE {{url}}
        """)
    )
    assert [e.method for e in parsed.entries] == ["POST", "DELETE"]


REJECTED = [
    ("GET {{base_url}}\n", 1, "method GET is outside the subset"),
    ("POST {{base_url}}\n[Options]\nretry: 3\n", 2, "request section [Options]"),
    (
        "POST {{base_url}}\nHTTP 200\n[QueryStringParams]\n",
        3,
        "unknown section [QueryStringParams]",
    ),
    ('POST {{base_url}}\nHTTP 200\n[Asserts]\nheader "A" endsWith "x"\n', 4, "unknown header"),
    ('POST {{base_url}}\nHTTP 200\n[Asserts]\nheader "A" == 5\n', 4, "double-quoted"),
    ("POST {{base_url}}\nHTTP 200\n[Asserts]\nstatus == 200\n", 4, "unknown query"),
    ('POST {{base_url}}\nHTTP 200\n[Asserts]\nbody contains "x"\n', 4, "unknown query"),
    ('POST {{base_url}}\nHTTP 200\n[Asserts]\nheader "A" == "\\n"\n', 4, "escape"),
    ('POST {{base_url}}\nHTTP 200\n[Asserts]\nheader "A" matches "("\n', 4, "invalid regex"),
    ('POST {{base_url}}\nHTTP 200\n[Captures]\nx: jsonpath "$.id"\n', 4, "captures"),
    ("POST {{base_url}}\nHTTP 200\n[Asserts]\n[Asserts]\n", 4, "appears twice"),
    ("POST {{base_url}}\nHTTP 200\nLocation: x\n", 3, "response headers"),
    ("POST {{base_url}}\nHTTP/1.1 200\n", 2, "expected `HTTP <code>`"),
    ("POST {{base_url}}\n```json\n{}\n```\n", 2, "bare ``` fence"),
    ("POST {{base_url}}\n```\nnever closed\n", 2, "never closed"),
    ("POST {{base_url}}\n```\n```\nA: b\n", 4, "expected `HTTP <code>`"),
    ("POST {{base_url}}\nA: b # trailing comment\n", 2, "`#` and `\\`"),
    ("POST {{upload_url}}\n", 1, "variable 'upload_url'"),
    ("POST {{base_url}}\nA: {{ tus_version | x }}\n", 2, "malformed template"),
    ("POST {{base_url}}\njust words\n", 2, "expected a request header"),
    ("# only a comment\n", 1, "no request"),
]


@pytest.mark.parametrize(("text", "line", "fragment"), REJECTED, ids=[r[2] for r in REJECTED])
def test_constructs_outside_the_subset_are_rejected(text: str, line: int, fragment: str) -> None:
    with pytest.raises(HurlSyntaxError) as caught:
        parse_text(text, "snippet.hurl")
    assert str(caught.value).startswith(f"snippet.hurl:{line}: "), caught.value
    assert fragment in str(caught.value)


# --------------------------------------------------------------------------------------------
# Request building and capture resolution without a server


def test_only_a_non_empty_fence_sends_a_body() -> None:
    entries = parse_text(
        "POST {{base_url}}\nPATCH {{base_url}}\n```\n```\nPATCH {{base_url}}\n```\nab\n```\n"
    ).entries
    with httpx.Client() as client:
        requests = [build_request(client, e, {"base_url": "http://h/files"}) for e in entries]
    assert [r.headers.get("Content-Length") for r in requests] == [None, None, "3"]
    assert [r.content for r in requests] == [b"", b"", b"ab\n"]


@pytest.mark.parametrize(
    ("request_url", "location", "expected"),
    [
        ("http://h:1/files", "files/abc", "http://h:1/files/abc"),
        ("http://h:1/api/files/", "abc", "http://h:1/api/files/abc"),
        ("http://h:1/files", "/uploads/abc", "http://h:1/uploads/abc"),
        ("http://h:1/files", "https://cdn.example/u/1", "https://cdn.example/u/1"),
    ],
)
def test_a_location_capture_is_resolved_against_the_request_url(
    request_url: str, location: str, expected: str
) -> None:
    (entry,) = parse_text('POST {{base_url}}\nHTTP 201\n[Captures]\nu: header "Location"\n').entries
    request = httpx.Request("POST", request_url)
    response = httpx.Response(201, headers={"Location": location}, request=request)
    variables: dict[str, str] = {}
    run_captures(entry, request, response, variables)
    assert variables == {"u": expected}


# --------------------------------------------------------------------------------------------
# The runner against a throwaway tus-like app


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class FakeServer:
    url: str
    seen: list[Seen] = field(default_factory=list)


def reply(method: str, path: str, body: bytes) -> tuple[int, list[tuple[str, str]]]:
    tus = [("Tus-Resumable", "1.0.0")]
    if (method, path) == ("PATCH", "/files/abc"):
        return 204, [("Upload-Offset", str(len(body))), *tus]
    table: dict[tuple[str, str], tuple[int, list[tuple[str, str]]]] = {
        ("OPTIONS", "/files"): (
            204,
            [("Tus-Version", "1.0.0,0.2.2"), ("Tus-Extension", "creation,termination")],
        ),
        ("POST", "/files"): (201, [("Location", "files/abc"), *tus]),
        ("HEAD", "/files/abc"): (
            200,
            [("Upload-Offset", "12"), ("Upload-Length", "12"), ("Cache-Control", "no-store"), *tus],
        ),
        ("DELETE", "/files/abc"): (204, tus),
        ("POST", "/files/broken"): (500, []),
        ("OPTIONS", "/files/twice"): (200, [("X-Twice", "a"), ("X-Twice", "b")]),
    }
    return table.get((method, path), (404, []))


def fake_app(seen: list[Seen]) -> Starlette:
    async def endpoint(request: Request) -> Response:
        body = await request.body()
        seen.append(Seen(request.method, request.url.path, dict(request.headers), body))
        status, headers = reply(request.method, request.url.path, body)
        response = Response(status_code=status)
        for name, value in headers:
            response.headers.append(name, value)
        return response

    methods = ["POST", "PATCH", "HEAD", "OPTIONS", "DELETE"]
    return Starlette(routes=[Route("/{path:path}", endpoint, methods=methods)])


@pytest.fixture(scope="module")
def fake_server() -> Iterator[FakeServer]:
    fake = FakeServer("")
    with running(fake_app(fake.seen)) as url:
        fake.url = url
        yield fake


@pytest.fixture
def fake(fake_server: FakeServer) -> FakeServer:
    fake_server.seen.clear()
    return fake_server


@pytest.fixture
def target(fake: FakeServer) -> Target:
    return Target(f"{fake.url}/files", headers=(AUTH,))


def run_snippet(tmp_path: Path, text: str, target: Target) -> FileResult:
    path = tmp_path / "case.hurl"
    path.write_text(hurl(text))
    return run_path(path, target)


PASSING = """
    OPTIONS {{base_url}}
    HTTP *
    [Asserts]
    status toString matches /^(200|204)$/
    header "Tus-Version" matches "^[0-9]+\\\\.[0-9]+\\\\.[0-9]+(,[0-9]+\\\\.[0-9]+\\\\.[0-9]+)*$"
    header "Tus-Extension" contains "termination"

    POST {{base_url}}
    Tus-Resumable: {{tus_version}}
    Upload-Length: 12
    HTTP 201
    [Captures]
    upload_url: header "Location"
    [Asserts]
    header "Location" == "files/abc"
    status < 500

    PATCH {{upload_url}}
    Tus-Resumable: {{tus_version}}
    Upload-Offset: 0
    ```
    Hello, tus!
    ```
    HTTP 204
    [Captures]
    offset: header "Upload-Offset"
    [Asserts]
    header "Upload-Offset" == "12"

    HEAD {{upload_url}}
    Tus-Resumable: {{tus_version}}
    HTTP 200
    [Asserts]
    header "Upload-Offset" == "{{offset}}"
    header "Cache-Control" startsWith "no-"
    header "Upload-Defer-Length" not exists
    header "Tus-Resumable" exists

    DELETE {{upload_url}}
    Tus-Resumable: {{tus_version}}
    HTTP 204

    POST {{base_url}}/broken
    HTTP *
    [Asserts]
    status >= 400
    """


def test_a_conforming_exchange_passes(tmp_path: Path, target: Target, fake: FakeServer) -> None:
    result = run_snippet(tmp_path, PASSING, target)
    assert (result.outcome, result.details) == ("passed", ())
    assert [(s.method, s.path) for s in fake.seen] == [
        ("OPTIONS", "/files"),
        ("POST", "/files"),
        ("PATCH", "/files/abc"),
        ("HEAD", "/files/abc"),
        ("DELETE", "/files/abc"),
        ("POST", "/files/broken"),
    ]


def test_requests_carry_auth_templates_and_exact_bodies(
    tmp_path: Path, target: Target, fake: FakeServer
) -> None:
    run_snippet(tmp_path, PASSING, target)
    options, post, patch, head, *_ = fake.seen
    assert all(s.headers["authorization"] == "Bearer test-key" for s in fake.seen)
    assert post.headers["tus-resumable"] == "1.0.0"
    assert "content-length" not in post.headers
    assert post.body == b""
    assert patch.headers["content-length"] == "12"
    assert patch.body == b"Hello, tus!\n"
    assert "content-length" not in options.headers
    assert "content-length" not in head.headers


FAILING = [
    ("OPTIONS {{base_url}}\nHTTP 200\n", "HTTP 200 expected, got 204"),
    (
        'OPTIONS {{base_url}}\nHTTP 204\n[Asserts]\nheader "Tus-Version" == "1.0.0"\n',
        "actual value '1.0.0,0.2.2', expected '1.0.0'",
    ),
    ('OPTIONS {{base_url}}\nHTTP *\n[Asserts]\nheader "Tus-Max-Size" exists\n', "header is absent"),
    (
        'OPTIONS {{base_url}}\nHTTP *\n[Asserts]\nheader "Tus-Version" not exists\n',
        "header is present: ['1.0.0,0.2.2']",
    ),
    (
        'OPTIONS {{base_url}}\nHTTP *\n[Asserts]\nheader "Tus-Extension" contains "checksum"\n',
        "expected 'checksum'",
    ),
    (
        'OPTIONS {{base_url}}\nHTTP *\n[Asserts]\nheader "Tus-Version" startsWith "2"\n',
        "expected '2'",
    ),
    (
        'OPTIONS {{base_url}}\nHTTP *\n[Asserts]\nheader "Tus-Version" matches "^1\\\\.0\\\\.0$"\n',
        "expected '^1\\\\.0\\\\.0$'",
    ),
    ("OPTIONS {{base_url}}\nHTTP *\n[Asserts]\nstatus toString matches /^200$/\n", "status is 204"),
    ("POST {{base_url}}/broken\nHTTP *\n[Asserts]\nstatus < 500\n", "status is 500"),
    ("OPTIONS {{base_url}}\nHTTP *\n[Asserts]\nstatus >= 400\n", "status is 204"),
    (
        'OPTIONS {{base_url}}\nHTTP *\n[Captures]\nx: header "Location"\n',
        "capture x (line 4): header 'Location' is absent",
    ),
    (
        'OPTIONS {{base_url}}/twice\nHTTP *\n[Asserts]\nheader "X-Twice" == "a"\n',
        "has 2 values ['a', 'b']",
    ),
]


@pytest.mark.parametrize(("text", "fragment"), FAILING, ids=[f[1][:40] for f in FAILING])
def test_every_kind_of_expectation_can_fail(
    tmp_path: Path, target: Target, text: str, fragment: str
) -> None:
    result = run_snippet(tmp_path, text, target)
    assert result.outcome == "failed"
    (detail,) = result.details
    assert fragment in detail
    assert detail.startswith(f"{tmp_path.as_posix()}/case.hurl:1: entry 1 ")
    assert "\n    got HTTP " in detail


def test_every_failed_assert_of_an_entry_is_reported(tmp_path: Path, target: Target) -> None:
    text = """
    OPTIONS {{base_url}}
    HTTP *
    [Asserts]
    header "Tus-Version" == "9"
    header "Tus-Version" exists
    header "Tus-Max-Size" exists
    status >= 400
    """
    result = run_snippet(tmp_path, text, target)
    assert result.outcome == "failed"
    lines = [re.search(r": line ([0-9]+): `", d) for d in result.details]
    assert [m.group(1) for m in lines if m] == ["4", "6", "7"]
    assert all("got HTTP 204; " in d and "tus-version: 1.0.0,0.2.2" in d for d in result.details)


def test_a_failed_entry_stops_the_file(tmp_path: Path, target: Target, fake: FakeServer) -> None:
    text = "OPTIONS {{base_url}}\nHTTP 200\nPOST {{base_url}}\nHTTP 201\n"
    result = run_snippet(tmp_path, text, target)
    assert result.outcome == "failed"
    assert [s.method for s in fake.seen] == ["OPTIONS"]


def test_an_unreachable_server_fails(tmp_path: Path) -> None:
    dead = Target(f"http://127.0.0.1:{free_port()}/files", timeout=2)
    result = run_snippet(tmp_path, "OPTIONS {{base_url}}\nHTTP *\n", dead)
    assert result.outcome == "failed"
    assert "request not sent or not answered" in result.details[0]


def test_extensions_are_discovered_and_decide_what_runs(target: Target) -> None:
    extensions = advertised_extensions(target)
    assert extensions == {"creation", "termination"}
    suite = SUITE_DIR / "tests"
    assert skip_reason(suite / "core/cp-opt/cp-opt-001-tus-version.hurl", extensions) is None
    assert skip_reason(suite / "extensions/creation/x.hurl", extensions) is None
    reason = skip_reason(suite / "extensions/checksum/x.hurl", extensions)
    assert reason == "extension 'checksum' is not advertised in Tus-Extension"


def test_cli_runs_core_and_advertised_extensions_only(
    tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    cases = {
        "tests/core/cp-opt/ok.hurl": "OPTIONS {{base_url}}\nHTTP 204\n",
        "tests/extensions/creation/bad.hurl": "POST {{base_url}}\nHTTP 200\n",
        "tests/extensions/checksum/skipped.hurl": "POST {{base_url}}\nHTTP 201\n",
    }
    for relative, text in cases.items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(text)
    argv = ["--base-url", f"{fake.url}/files/", "--header", "Authorization: Bearer k"]
    assert main([*argv, str(tmp_path)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("PASS ")
    assert lines[0].endswith("/tests/core/cp-opt/ok.hurl")
    assert lines[1].startswith("SKIP ")
    assert lines[1].endswith(
        "skipped.hurl (extension 'checksum' is not advertised in Tus-Extension)"
    )
    assert lines[2].startswith("FAIL ")
    assert lines[2].endswith("/extensions/creation/bad.hurl")
    assert "bad.hurl:1: entry 1 POST" in lines[3]
    assert "HTTP 200 expected, got 201" in lines[3]
    assert lines[4].startswith("        got HTTP 201; ")
    assert lines[5:] == ["1 passed, 1 failed, 1 skipped"]
    assert all(s.headers["authorization"] == "Bearer k" for s in fake.seen)
    assert main([*argv, str(tmp_path / "tests/core")]) == 0
