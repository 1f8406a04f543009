"""The telemetry reference pages' tables are the code's: the event fields on
docs/telemetry/events.md are the pydantic model's, the metric catalogue on docs/telemetry/kpis.md
is `CATALOGUE`. A failure prints the table the page should hold (run this file with python to
print them all)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from reelout.telemetry import events as model
from reelout.telemetry.metrics import CATALOGUE, Metric

ROOT = Path(__file__).resolve().parents[1]
EVENTS_PAGE = ROOT / "docs" / "telemetry" / "events.md"
KPIS_PAGE = ROOT / "docs" / "telemetry" / "kpis.md"
TO = "\u2013"  # the en dash of a range ("1 to 255"), as the page writes it
BIG = 2**53  # the model's "any count" ceiling: not worth a word on the page
COMMON_HEADING = "## Fields every event has"
NO_FIELDS = "No fields of its own."
MODELS: list[type[model.Common]] = [*model.ClientEvent.__args__, model.ProcessingFinished]


def _type(schema: dict[str, Any]) -> str:
    if "anyOf" in schema:
        (inner,) = [part for part in schema["anyOf"] if part.get("type") != "null"]
        return _type(inner)
    if "const" in schema:
        return f"`{json.dumps(schema['const'])}`"
    if "enum" in schema:
        return "one of " + ", ".join(f"`{value}`" for value in schema["enum"])
    kind = schema["type"]
    if kind == "string":
        formats = {"uuid": "UUID", "date-time": "RFC 3339 time with offset"}
        if schema.get("format") in formats:
            return formats[schema["format"]]
        if "maxLength" not in schema:
            return "string"
        return f"string, {schema.get('minLength', 0)}{TO}{schema['maxLength']} chars"
    if kind == "integer":
        low, high = schema.get("minimum"), schema.get("maximum")
        return f"integer ≥ {low}" if high in (None, BIG) else f"integer {low}{TO}{high}"
    if kind == "object":
        return f"object: string → string, ≤ {schema['maxProperties']} entries"
    return str(kind)


def _required(name: str, schema: dict[str, Any], required: list[str]) -> str:
    if name in required:
        return "yes"
    default = schema.get("default")
    return "no" if default in (None, {}) else f"no (default `{json.dumps(default)}`)"


def field_rows(fields: type[BaseModel], names: list[str]) -> list[tuple[str, str, str, str]]:
    """(field, type, required, the model's description or "") of each named field."""
    schema = fields.model_json_schema()
    props, required = schema["properties"], schema.get("required", [])
    return [
        (
            f"`{name}`",
            _type(props[name]),
            _required(name, props[name], required),
            props[name].get("description", ""),
        )
        for name in names
    ]


def fields_table(fields: type[BaseModel], names: list[str]) -> str:
    lines = ["| Field | Type | Required | Meaning |", "|---|---|---|---|"]
    lines += ["| " + " | ".join(row) + " |" for row in field_rows(fields, names)]
    return "\n".join(lines)


def shown_rows(text: str) -> list[tuple[str, str, str, str]]:
    """The rows of the first field table in `text`."""
    found = re.findall(r"^\| (`\w+`) \| (.+?) \| (.+?) \| (.*?) \|$", text, re.MULTILINE)
    return [tuple(row) for row in found]


def check_table(text: str, fields: type[BaseModel], names: list[str], where: str) -> None:
    """The page's table has the model's fields, types and requiredness in order; its meaning
    is the model's description where it has one, else the page's own words (not empty)."""
    expected, shown = field_rows(fields, names), shown_rows(text)
    hint = f"{where} needs this table (fill in empty meanings):\n{fields_table(fields, names)}"
    assert [row[:3] for row in shown] == [row[:3] for row in expected], hint
    for (name, _, _, meaning), (_, _, _, words) in zip(expected, shown, strict=True):
        assert words.strip(), f"{where}: say what {name} means"
        assert not meaning or words.startswith(meaning), f"{where}: {name} means {meaning!r}"


def common_table() -> str:
    return fields_table(model.Common, list(model.Common.model_fields))


def common_section() -> str:
    (text,) = [body for head, body in sections(EVENTS_PAGE).items() if head == COMMON_HEADING]
    return text


def own_fields(event: type[model.Common]) -> list[str]:
    return [name for name in event.model_fields if name not in model.Common.model_fields]


def type_names(event: type[model.Common]) -> list[str]:
    return list(event.model_fields["type"].annotation.__args__)


def heading(event: type[model.Common]) -> str:
    return "### " + ", ".join(f"`{name}`" for name in type_names(event))


def type_fields(event: type[model.Common]) -> list[str]:
    return [name for name in own_fields(event) if name != "type"]


def type_section(event: type[model.Common]) -> str:
    fields = type_fields(event)
    return fields_table(event, fields) if fields else NO_FIELDS


def _goal(metric: Metric) -> str:
    if metric.goal is None:
        return "—"
    shown = _shown(metric, metric.goal.baseline), _shown(metric, metric.goal.target)
    return f"{shown[0]} → {metric.goal.op} {shown[1]}"


def _shown(metric: Metric, value: float) -> str:
    if metric.display == "percent":
        return f"{value * 100:g} %"
    return f"{value:g} s" if metric.display == "seconds" else f"{value:g}"


def catalogue_table() -> str:
    lines = [
        "| Metric | Kind | Unit | Numerator / denominator | Better | Seed: baseline → goal "
        "| Definition |",
        "|---|---|---|---|---|---|---|",
    ]
    for metric in CATALOGUE:
        over = (
            f"`{metric.numerator}` / `{metric.denominator}`"
            if metric.denominator
            else (f"mean of `{metric.numerator}`")
        )
        extra = (
            f" Arrives late: read it after {metric.lag_minutes} min." if metric.lag_minutes else ""
        )
        extra += " With p50 and p90." if metric.quantiles else ""
        lines.append(
            f"| `{metric.name}` ({metric.title}) | {metric.kind} | {metric.unit} | {over} | "
            f"{metric.direction} | {_goal(metric)} | {metric.description}{extra} |"
        )
    return "\n".join(lines)


def sections(page: Path) -> dict[str, str]:
    """Each `### …` heading of the page and the text up to the next heading."""
    parts = re.split(r"^(#{2,3} .*)$", page.read_text(encoding="utf-8"), flags=re.MULTILINE)
    return {parts[i].strip(): parts[i + 1] for i in range(1, len(parts) - 1, 2)}


def test_the_common_fields_table_is_the_models() -> None:
    fields = list(model.Common.model_fields)
    check_table(common_section(), model.Common, fields, COMMON_HEADING)


def test_every_event_type_has_its_section_with_its_fields() -> None:
    found = sections(EVENTS_PAGE)
    shown = {head for head in found if head.startswith("### `")}
    assert shown == {heading(event) for event in MODELS}, "one ### section per event type"
    for event in MODELS:
        text, fields = found[heading(event)], type_fields(event)
        if fields:
            check_table(text, event, fields, heading(event))
        else:
            assert NO_FIELDS in text and not shown_rows(text), f"{heading(event)}: {NO_FIELDS}"


def test_the_page_names_every_type_and_only_them() -> None:
    assert {name for event in MODELS for name in type_names(event)} == model.TYPES


def test_the_metric_catalogue_table_is_the_codes() -> None:
    table = catalogue_table()
    assert table in KPIS_PAGE.read_text(encoding="utf-8"), f"put this on the page:\n{table}"


@pytest.mark.parametrize("page", [EVENTS_PAGE, KPIS_PAGE], ids=lambda p: p.name)
def test_the_page_is_in_the_navigation(page: Path) -> None:
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    assert page.relative_to(ROOT / "docs").as_posix() in nav


if __name__ == "__main__":
    print(common_table(), end="\n\n")
    for event in MODELS:
        print(heading(event), type_section(event), sep="\n\n", end="\n\n")
    print(catalogue_table())
