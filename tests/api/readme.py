"""The README's API examples, extracted verbatim (used by the README and live tests)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from string import Template
from typing import Any

README = Path(__file__).resolve().parents[2] / "README.md"
CURL = re.compile(
    r"^curl -s (?P<url>\S+) (?P<options>.*?)-d @- <<'EOF'\n(?P<body>.*?)\nEOF$", re.M | re.S
)
HEADER = re.compile(r"""-H (?:'(?P<single>[^']*)'|"(?P<double>[^"]*)")""")
GRAPHQL = re.compile(r"^```graphql\n(?P<query>.*?)^```$", re.M | re.S)


def api_section() -> str:
    text = README.read_text()
    start = text.index("\n## API\n")
    return text[start : text.index("\n## ", start + 1)]


def quick_start(env: Mapping[str, str]) -> tuple[str, dict[str, str], dict[str, Any]]:
    """The URL, headers and JSON body of the quick-start ``curl`` command; ``$VAR`` in a
    double-quoted header comes from ``env``, as a shell would expand it."""
    match = CURL.search(api_section())
    assert match, "the API section has a curl … -d @- <<'EOF' … EOF example"
    headers = {}
    for header in HEADER.finditer(match["options"]):
        line = header["single"] or Template(header["double"]).substitute(env)
        name, _, value = line.partition(":")
        headers[name.strip()] = value.strip()
    return match["url"], headers, json.loads(match["body"])


def graphql_examples() -> list[str]:
    return [m["query"] for m in GRAPHQL.finditer(api_section())]
