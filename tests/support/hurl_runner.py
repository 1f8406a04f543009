"""A small httpx runner for the hurl subset used by the tus-compliance `.hurl` cases."""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args
from urllib.parse import urljoin

import httpx

TUS_VERSION = "1.0.0"
RUNNER_VARIABLES = frozenset({"base_url", "tus_version"})
METHODS = frozenset({"POST", "PATCH", "HEAD", "OPTIONS", "DELETE"})
SECTIONS = frozenset({"Captures", "Asserts"})
FENCE = "```"
SUITE_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "conformance" / "tus-compliance"

_REQUEST = re.compile(r"^(?!HTTP\b)([A-Z]+)\s+(\S+)$")
_STATUS_LINE = re.compile(r"^HTTP\s+([0-9]{3}|\*)$")
_HEADER = re.compile(r"^([A-Za-z0-9!#$%&'*+.^_`|~-]+)\s*:\s*(.*)$")
_SECTION = re.compile(r"^\[(.*)\]$")
_TEMPLATE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_-]*)\s*\}\}")
_CAPTURE = re.compile(r'^([A-Za-z_][A-Za-z0-9_-]*)\s*:\s*header\s+"([^"\\]+)"$')
_HEADER_ASSERT = re.compile(r'^header\s+"([^"\\]+)"\s+(.+)$')
_HEADER_OPERATION = re.compile(r"^(\S+)\s+(.+)$")
_STATUS_MATCHES = re.compile(r"^status\s+toString\s+matches\s+/((?:[^/\\]|\\.)+)/$")
_STATUS_COMPARE = re.compile(r"^status\s+(<|>=)\s+([0-9]+)$")

HeaderPredicate = Literal["==", "exists", "not exists", "contains", "startsWith", "matches"]
StatusPredicate = Literal["matches", "<", ">="]
Outcome = Literal["passed", "failed", "skipped"]

_STRING_PREDICATES: dict[str, Callable[[str, str], bool]] = {
    "==": lambda actual, expected: actual == expected,
    "contains": lambda actual, expected: expected in actual,
    "startsWith": lambda actual, expected: actual.startswith(expected),
    "matches": lambda actual, expected: re.search(expected, actual) is not None,
}


class HurlSyntaxError(ValueError):
    """A `.hurl` file uses a construct outside the supported subset, reported as file:line."""

    def __init__(self, name: str, line: int, message: str) -> None:
        super().__init__(f"{name}:{line}: {message}")
        self.name = name
        self.line = line


@dataclass(frozen=True)
class Capture:
    """`name: header "X"`: keeps the header value (a Location resolved) as a variable."""

    line: int
    name: str
    header: str


@dataclass(frozen=True)
class HeaderAssert:
    """`header "X" <predicate> ["value"]`."""

    line: int
    source: str
    header: str
    predicate: HeaderPredicate
    value: str | None = None


@dataclass(frozen=True)
class StatusAssert:
    """`status toString matches /re/`, `status < N` or `status >= N`."""

    line: int
    source: str
    predicate: StatusPredicate
    value: str | int


Assertion = HeaderAssert | StatusAssert


@dataclass
class Entry:
    """One request of a file with what its response must satisfy."""

    number: int
    line: int
    method: str
    url: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: str | None = None
    status: int | Literal["*"] | None = None
    captures: list[Capture] = field(default_factory=list)
    asserts: list[Assertion] = field(default_factory=list)


@dataclass(frozen=True)
class HurlFile:
    name: str
    entries: list[Entry]


# --------------------------------------------------------------------------------------------
# Parsing


def _looks_like_status(text: str) -> bool:
    return text == "HTTP" or text.startswith(("HTTP ", "HTTP/", "HTTP\t"))


class _Parser:
    """Line-oriented parser; comments and blank lines may appear anywhere outside a fence."""

    def __init__(self, text: str, name: str) -> None:
        self.name = name
        self.lines = text.split("\n")
        self.pos = 0
        self.known: set[str] = set(RUNNER_VARIABLES)

    def error(self, line: int, message: str) -> HurlSyntaxError:
        return HurlSyntaxError(self.name, line, message)

    def peek(self) -> tuple[int, str] | None:
        while self.pos < len(self.lines):
            text = self.lines[self.pos].strip()
            if text and not text.startswith("#"):
                return self.pos + 1, text
            self.pos += 1
        return None

    def take(self) -> tuple[int, str]:
        item = self.peek()
        assert item is not None
        self.pos += 1
        return item

    def parse(self) -> list[Entry]:
        if "\r" in "".join(self.lines):
            raise self.error(1, "carriage returns (CRLF line ends) are outside the subset")
        entries: list[Entry] = []
        while self.peek() is not None:
            entries.append(self.entry(len(entries) + 1))
        if not entries:
            raise self.error(1, "the file has no request")
        return entries

    def entry(self, number: int) -> Entry:
        line, text = self.take()
        match = _REQUEST.match(text)
        if not match:
            raise self.error(line, f"expected a request line `METHOD URL`, got {text!r}")
        method, url = match.groups()
        if method not in METHODS:
            raise self.error(line, f"method {method} is outside the subset {sorted(METHODS)}")
        self.check_templates(url, line)
        entry = Entry(number, line, method, url)
        self.request_part(entry)
        self.response_part(entry)
        self.known.update(capture.name for capture in entry.captures)
        for assertion in entry.asserts:
            if isinstance(assertion, HeaderAssert) and assertion.value is not None:
                self.check_templates(assertion.value, assertion.line)
        return entry

    def request_part(self, entry: Entry) -> None:
        while (item := self.peek()) is not None:
            line, text = item
            if _REQUEST.match(text) or _looks_like_status(text):
                return
            self.take()
            if text.startswith(FENCE):
                entry.body = self.body(line, text)
                return
            if _SECTION.match(text):
                raise self.error(line, f"request section {text} is outside the subset")
            entry.headers.append(self.header(line, text))

    def header(self, line: int, text: str) -> tuple[str, str]:
        match = _HEADER.match(text)
        if not match:
            raise self.error(line, f"expected a request header `Name: value`, got {text!r}")
        name, value = match.group(1), match.group(2).strip()
        if "#" in value or "\\" in value:
            raise self.error(line, "`#` and `\\` in header values are outside the subset")
        self.check_templates(value, line)
        return name, value

    def body(self, line: int, text: str) -> str:
        if text != FENCE:
            raise self.error(
                line, "only a bare ``` fence is in the subset (no language, no one-line)"
            )
        content: list[str] = []
        while self.pos < len(self.lines):
            raw = self.lines[self.pos]
            self.pos += 1
            if raw.strip() == FENCE:
                body = "".join(part + "\n" for part in content)
                self.check_templates(body, line)
                return body
            content.append(raw)
        raise self.error(line, "the ``` fence is never closed")

    def response_part(self, entry: Entry) -> None:
        item = self.peek()
        if item is None or _REQUEST.match(item[1]):
            return
        line, text = self.take()
        match = _STATUS_LINE.match(text)
        if not match:
            raise self.error(line, f"expected `HTTP <code>` or `HTTP *`, got {text!r}")
        entry.status = "*" if match.group(1) == "*" else int(match.group(1))
        self.sections(entry)

    def sections(self, entry: Entry) -> None:
        seen: set[str] = set()
        section: str | None = None
        while (item := self.peek()) is not None and not _REQUEST.match(item[1]):
            line, text = self.take()
            if match := _SECTION.match(text):
                section = self.section(line, match.group(1), seen)
            elif section is None:
                raise self.error(line, f"response headers/body ({text!r}) are outside the subset")
            elif section == "Captures":
                entry.captures.append(self.capture(line, text))
            else:
                entry.asserts.append(self.assertion(line, text))

    def section(self, line: int, name: str, seen: set[str]) -> str:
        if name not in SECTIONS:
            raise self.error(line, f"unknown section [{name}]: only [Captures] and [Asserts]")
        if name in seen:
            raise self.error(line, f"section [{name}] appears twice in one response")
        seen.add(name)
        return name

    def capture(self, line: int, text: str) -> Capture:
        match = _CAPTURE.match(text)
        if not match:
            raise self.error(line, f'only `name: header "X"` captures are supported, got {text!r}')
        return Capture(line, match.group(1), match.group(2))

    def assertion(self, line: int, text: str) -> Assertion:
        if match := _HEADER_ASSERT.match(text):
            return self.header_assert(line, text, match.group(1), match.group(2).strip())
        if match := _STATUS_MATCHES.match(text):
            pattern = match.group(1).replace("\\/", "/")
            self.check_regex(pattern, line)
            return StatusAssert(line, text, "matches", pattern)
        if match := _STATUS_COMPARE.match(text):
            predicate: StatusPredicate = "<" if match.group(1) == "<" else ">="
            return StatusAssert(line, text, predicate, int(match.group(2)))
        raise self.error(line, f"unknown query or predicate: {text!r}")

    def header_assert(self, line: int, text: str, header: str, rest: str) -> HeaderAssert:
        if rest == "exists":
            return HeaderAssert(line, text, header, "exists")
        if re.fullmatch(r"not\s+exists", rest):
            return HeaderAssert(line, text, header, "not exists")
        match = _HEADER_OPERATION.match(rest)
        if not match or match.group(1) not in _STRING_PREDICATES:
            raise self.error(line, f"unknown header predicate in {text!r}")
        predicate: HeaderPredicate = match.group(1)  # type: ignore[assignment]
        value = self.quoted(match.group(2).strip(), line)
        if predicate == "matches" and not _TEMPLATE.search(value):
            self.check_regex(value, line)
        return HeaderAssert(line, text, header, predicate, value)

    def quoted(self, text: str, line: int) -> str:
        """A whole double-quoted string; `\\\\` and `\\"` are its only escapes."""
        if len(text) < 2 or text[0] != '"' or text[-1] != '"':
            raise self.error(line, f"expected one double-quoted string, got {text!r}")
        out: list[str] = []
        inner, index = text[1:-1], 0
        while index < len(inner):
            char = inner[index]
            if char == '"' or (char == "\\" and inner[index + 1 : index + 2] not in ("\\", '"')):
                raise self.error(line, f"unsupported quote or escape in {text!r}")
            out.append(inner[index + 1] if char == "\\" else char)
            index += 2 if char == "\\" else 1
        return "".join(out)

    def check_regex(self, pattern: str, line: int) -> None:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise self.error(line, f"invalid regex {pattern!r}: {exc}") from None

    def check_templates(self, text: str, line: int) -> None:
        rest = _TEMPLATE.sub("", text)
        if "{{" in rest or "}}" in rest:
            raise self.error(line, f"malformed template in {text!r}")
        for name in _TEMPLATE.findall(text):
            if name not in self.known:
                raise self.error(
                    line, f"variable {name!r} is neither a runner variable nor captured earlier"
                )


def parse_text(text: str, name: str = "<string>") -> HurlFile:
    """Parse hurl source; raises HurlSyntaxError on anything outside the subset."""
    return HurlFile(name, _Parser(text, name).parse())


def parse_file(path: Path) -> HurlFile:
    return parse_text(path.read_text(encoding="utf-8"), display_name(path))


# --------------------------------------------------------------------------------------------
# Running


@dataclass(frozen=True)
class Target:
    """The server under test: `base_url` is the tus collection URL, without a trailing slash."""

    base_url: str
    headers: tuple[tuple[str, str], ...] = ()
    tus_version: str = TUS_VERSION
    timeout: float = 30.0

    def client(self) -> httpx.Client:
        return httpx.Client(
            headers=list(self.headers), follow_redirects=False, timeout=self.timeout
        )

    def variables(self) -> dict[str, str]:
        return {"base_url": self.base_url, "tus_version": self.tus_version}


@dataclass(frozen=True)
class FileResult:
    name: str
    outcome: Outcome
    details: tuple[str, ...] = ()


class _EntryError(Exception):
    """The entry cannot go on (a failed capture, an undefined variable)."""


def render(text: str, variables: dict[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in variables:
            raise _EntryError(f"variable {name!r} is not defined")
        return variables[name]

    return _TEMPLATE.sub(value, text)


def build_request(client: httpx.Client, entry: Entry, variables: dict[str, str]) -> httpx.Request:
    """Like hurl (libcurl), a request without a non-empty body sends no body and no length."""
    body = render(entry.body, variables).encode() if entry.body else None
    headers = [(name, render(value, variables)) for name, value in entry.headers]
    url = render(entry.url, variables)
    request = client.build_request(entry.method, url, headers=headers, content=body)
    explicit = any(name.lower() == "content-length" for name, _ in headers)
    if body is None and not explicit and "Content-Length" in request.headers:
        del request.headers["Content-Length"]
    return request


def describe_response(response: httpx.Response) -> str:
    headers = "; ".join(f"{name}: {value}" for name, value in response.headers.multi_items())
    return f"HTTP {response.status_code}; {headers or '(no headers)'}"


def check_status(entry: Entry, status: int) -> str | None:
    if entry.status in (None, "*") or entry.status == status:
        return None
    return f"HTTP {entry.status} expected, got {status}"


def single_header(headers: httpx.Headers, name: str) -> str:
    values = headers.get_list(name)
    if not values:
        raise _EntryError(f"header {name!r} is absent")
    if len(values) > 1:
        raise _EntryError(f"header {name!r} has {len(values)} values {values!r}, not one")
    return values[0]


def run_captures(
    entry: Entry, request: httpx.Request, response: httpx.Response, variables: dict[str, str]
) -> None:
    """Store captures; a relative Location is resolved against the request URL."""
    for capture in entry.captures:
        try:
            value = single_header(response.headers, capture.header)
        except _EntryError as exc:
            raise _EntryError(f"capture {capture.name} (line {capture.line}): {exc}") from None
        if capture.header.lower() == "location":
            value = urljoin(str(request.url), value)
        variables[capture.name] = value


def evaluate_status(assertion: StatusAssert, status: int) -> bool:
    if assertion.predicate == "matches":
        return re.search(str(assertion.value), str(status)) is not None
    if assertion.predicate == "<":
        return status < int(assertion.value)
    return status >= int(assertion.value)


def evaluate_header(
    assertion: HeaderAssert, headers: httpx.Headers, variables: dict[str, str]
) -> str | None:
    """None when the assertion holds, else what was actually found."""
    values = headers.get_list(assertion.header)
    if assertion.predicate == "exists":
        return None if values else "header is absent"
    if assertion.predicate == "not exists":
        return f"header is present: {values!r}" if values else None
    try:
        actual = single_header(headers, assertion.header)
        expected = render(assertion.value or "", variables)
        holds = _STRING_PREDICATES[assertion.predicate](actual, expected)
    except (_EntryError, re.error) as exc:
        return str(exc)
    return None if holds else f"actual value {actual!r}, expected {expected!r}"


def evaluate(
    assertion: Assertion, response: httpx.Response, variables: dict[str, str]
) -> str | None:
    if isinstance(assertion, StatusAssert):
        ok = evaluate_status(assertion, response.status_code)
        return None if ok else f"status is {response.status_code}"
    return evaluate_header(assertion, response.headers, variables)


def check_response(
    entry: Entry, request: httpx.Request, response: httpx.Response, variables: dict[str, str]
) -> list[str]:
    """Hurl's order: the status line, then captures, then every explicit assert."""
    if problem := check_status(entry, response.status_code):
        return [problem]
    try:
        run_captures(entry, request, response, variables)
    except _EntryError as exc:
        return [str(exc)]
    failures: list[str] = []
    for assertion in entry.asserts:
        if (actual := evaluate(assertion, response, variables)) is not None:
            failures.append(f"line {assertion.line}: `{assertion.source}` failed: {actual}")
    return failures


def run_entry(
    name: str, entry: Entry, client: httpx.Client, variables: dict[str, str]
) -> list[str]:
    where = f"{name}:{entry.line}: entry {entry.number} {entry.method}"
    try:
        request = build_request(client, entry, variables)
        response = client.send(request)
    except (_EntryError, httpx.HTTPError) as exc:
        return [f"{where} {entry.url}: request not sent or not answered: {exc!r}"]
    failures = check_response(entry, request, response, variables)
    got = describe_response(response)
    return [f"{where} {request.url}: {failure}\n    got {got}" for failure in failures]


def run_hurl(hurl: HurlFile, target: Target) -> list[str]:
    """Failure messages of the first failing entry (later entries depend on it), or none."""
    variables = target.variables()
    with target.client() as client:
        for entry in hurl.entries:
            if failures := run_entry(hurl.name, entry, client, variables):
                return failures
    return []


def run_path(path: Path, target: Target) -> FileResult:
    hurl = parse_file(path)
    failures = run_hurl(hurl, target)
    return FileResult(hurl.name, "failed" if failures else "passed", tuple(failures))


# --------------------------------------------------------------------------------------------
# Suite selection


def suite_dir() -> Path:
    """The shared suite (`../shared` next to the repository); a clear error when missing."""
    if not (SUITE_DIR / "tests").is_dir():
        raise FileNotFoundError(
            f"the tus compliance suite is missing: expected {SUITE_DIR / 'tests'} "
            "(the shared folder sits next to the repository as ../shared)"
        )
    return SUITE_DIR


def display_name(path: Path) -> str:
    """The suite-relative path (as in the skip lists) when the file is in the suite."""
    try:
        return path.resolve().relative_to(SUITE_DIR).as_posix()
    except ValueError:
        return path.as_posix()


def collect(paths: Iterable[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(path.rglob("*.hurl")))
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(f"no such .hurl file or folder: {path}")
    return files


def advertised_extensions(target: Target) -> frozenset[str]:
    """The extensions listed in `Tus-Extension` of `OPTIONS {base_url}`."""
    with target.client() as client:
        response = client.options(target.base_url)
    listed = response.headers.get("Tus-Extension", "")
    return frozenset(part.strip() for part in listed.split(",") if part.strip())


def required_extension(path: Path) -> str | None:
    """`.../extensions/<name>/case.hurl` needs extension <name>; everything else is core."""
    return path.parent.name if path.parent.parent.name == "extensions" else None


def skip_reason(path: Path, extensions: frozenset[str]) -> str | None:
    needed = required_extension(path)
    if needed is None or needed in extensions:
        return None
    return f"extension {needed!r} is not advertised in Tus-Extension"


def run_suite(paths: Sequence[Path], target: Target) -> list[FileResult]:
    extensions = advertised_extensions(target)
    results: list[FileResult] = []
    for path in paths:
        if reason := skip_reason(path, extensions):
            results.append(FileResult(display_name(path), "skipped", (reason,)))
            continue
        try:
            results.append(run_path(path, target))
        except HurlSyntaxError as exc:
            results.append(FileResult(display_name(path), "failed", (str(exc),)))
    return results


def check_syntax(paths: Sequence[Path]) -> list[FileResult]:
    results: list[FileResult] = []
    for path in paths:
        try:
            hurl = parse_file(path)
        except HurlSyntaxError as exc:
            results.append(FileResult(display_name(path), "failed", (str(exc),)))
        else:
            entries = f"{len(hurl.entries)} entries"
            results.append(FileResult(hurl.name, "passed", (entries,)))
    return results


# --------------------------------------------------------------------------------------------
# Command line


def summary(results: Sequence[FileResult]) -> str:
    counts = {outcome: sum(r.outcome == outcome for r in results) for outcome in get_args(Outcome)}
    return f"{counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped"


def report_line(result: FileResult) -> str:
    label = {"passed": "PASS", "failed": "FAIL", "skipped": "SKIP"}[result.outcome]
    if result.outcome == "failed":
        details = "".join("\n    " + d.replace("\n", "\n    ") for d in result.details)
        return f"{label} {result.name}{details}"
    note = f" ({'; '.join(result.details)})" if result.details else ""
    return f"{label} {result.name}{note}"


def parse_header_option(text: str) -> tuple[str, str]:
    name, sep, value = text.partition(":")
    if not sep or not _HEADER.match(f"{name.strip()}:"):
        raise argparse.ArgumentTypeError(f"expected 'Name: value', got {text!r}")
    return name.strip(), value.strip()


def argument_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base-url", help="tus collection URL, e.g. http://127.0.0.1:8000/files")
    parser.add_argument(
        "--header",
        action="append",
        default=[],
        type=parse_header_option,
        help="extra header for every request, e.g. 'Authorization: Bearer KEY' (repeatable)",
    )
    parser.add_argument("--parse-only", action="store_true", help="only check the syntax")
    parser.add_argument("--tus-version", default=TUS_VERSION)
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("paths", nargs="*", type=Path, help="files or folders (default: suite)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = argument_parser()
    args = parser.parse_args(argv)
    if not args.parse_only and not args.base_url:
        parser.error("--base-url is required unless --parse-only is given")
    try:
        paths = collect(args.paths or [suite_dir() / "tests"])
        if args.parse_only:
            results = check_syntax(paths)
        else:
            target = Target(
                args.base_url.rstrip("/"), tuple(args.header), args.tus_version, args.timeout
            )
            results = run_suite(paths, target)
    except (FileNotFoundError, httpx.HTTPError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for result in results:
        print(report_line(result))
    print(summary(results))
    return 1 if any(r.outcome == "failed" for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
