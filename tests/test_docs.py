"""The documentation describes this repository, and its examples work: links lead to
files that exist, event examples fit the JSON Schema and the parser, and the API
guide's operations are valid against the schema."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from graphql import build_schema, parse, validate
from jsonschema import Draft202012Validator, FormatChecker

from idgraph.config import Settings
from idgraph.domain.events import EventParser
from idgraph.domain.model import utcnow
from idgraph.domain.normalize import Normalizer
from idgraph.errors import EventError

ROOT = Path(__file__).parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)|<(https?://[^>]+)>")
SCHEMA = Draft202012Validator(
    json.loads((ROOT / "docs" / "event.schema.json").read_text()),
    format_checker=FormatChecker(),
)
SETTINGS = Settings()
PARSER = EventParser(Normalizer("US"), SETTINGS.rules, timedelta(minutes=5))


def code_blocks(path: Path, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```$", path.read_text(), re.M | re.S)


def event_examples() -> list[Any]:
    """Every event in a ```json block of the README and docs/: one object per block, or
    one per line (JSON Lines)."""
    events = []
    for path in DOCS:
        for block in code_blocks(path, "json"):
            try:
                events.append(json.loads(block))
            except json.JSONDecodeError:
                events += [json.loads(line) for line in block.splitlines() if line.strip()]
    return events


def parses(event: object) -> bool:
    try:
        PARSER.parse(event, utcnow())
    except EventError:
        return False
    return True


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_links_lead_to_files_in_the_repository(path: Path) -> None:
    for match in LINK.finditer(path.read_text()):
        target = match[1] or match[2]
        if target.startswith("#"):
            continue
        assert not target.startswith(("http://", "https://")) or re.match(
            r"https?://(127\.0\.0\.1|localhost)[:/]", target
        ), f"{path.name} links outside the repository: {target}"
        if not target.startswith("http"):
            assert (path.parent / target.split("#")[0]).resolve().is_relative_to(ROOT)
            assert (path.parent / target.split("#")[0]).exists(), f"{path.name}: {target}"


def test_nothing_points_outside_the_repository() -> None:
    files = [*DOCS, *(ROOT / "src").rglob("*.py"), ROOT / "Dockerfile", ROOT / "pyproject.toml"]
    for path in files:
        text = path.read_text()
        assert "DESIGN.md" not in text, path
        assert "../shared" not in text, path


def test_every_event_example_fits_the_schema_and_the_parser() -> None:
    examples = event_examples()
    assert len(examples) >= 3
    for event in examples:
        SCHEMA.validate(event)
        assert parses(event), event


BASE = {"id": "e1", "timestamp": "2026-03-01T12:00:00Z", "source": "web"}
EMAIL = {"identifiers": [{"kind": "email", "value": "a@example.com"}]}


@pytest.mark.parametrize(
    ("event", "valid"),
    [
        ({**BASE, **EMAIL}, True),
        ({**BASE, "device": {"id": "d1"}}, True),
        ({**BASE, "account": {"system": "shop", "id": "42"}}, True),
        ({**BASE, **EMAIL, "timestamp": "2026-03-01T14:00:00+02:00"}, True),
        ({**BASE, **EMAIL, "consent": {"purpose": "support", "status": "denied"}}, True),
        ({**BASE, **EMAIL, "interaction": {"type": "page_view", "properties": {"n": 1}}}, True),
        ({**BASE, **EMAIL, "traits": {"tier": "gold", "score": 3.5}}, True),
        (BASE, False),  # no identity node
        ({**BASE, **EMAIL, "extra": 1}, False),
        ({**EMAIL, "id": "e1", "source": "web"}, False),  # no timestamp
        ({**BASE, **EMAIL, "timestamp": "2026-03-01T12:00:00"}, False),  # no offset
        ({**BASE, **EMAIL, "timestamp": "1969-12-31T23:59:59Z"}, False),
        ({**BASE, **EMAIL, "id": ""}, False),
        ({**BASE, **EMAIL, "source": "we\x01b"}, False),
        ({**BASE, "identifiers": [{"kind": "device", "value": "d1"}]}, False),
        ({**BASE, "identifiers": [{"kind": "Email", "value": "a@example.com"}]}, False),
        ({**BASE, **EMAIL, "consent": {"purpose": "support", "status": "GRANTED"}}, False),
        ({**BASE, **EMAIL, "interaction": {"type": "Page View"}}, False),
        ({**BASE, "account": {"system": "Shop!", "id": "42"}}, False),
    ],
)
def test_the_schema_and_the_parser_agree(event: dict[str, Any], valid: bool) -> None:
    assert SCHEMA.is_valid(event) is valid
    assert parses(event) is valid


def test_the_api_guide_examples_are_valid_operations() -> None:
    schema = build_schema((ROOT / "schema.graphql").read_text())
    examples = code_blocks(ROOT / "docs" / "api.md", "graphql")
    assert len(examples) >= 5
    for example in examples:
        assert validate(schema, parse(example)) == [], example
