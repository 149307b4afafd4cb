"""The README's API examples, extracted verbatim (used by the README and live tests)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

README = Path(__file__).resolve().parents[2] / "README.md"
CURL = re.compile(r"^curl -s (?P<url>\S+) .*-d @- <<'EOF'\n(?P<body>.*?)\nEOF$", re.M | re.S)
GRAPHQL = re.compile(r"^```graphql\n(?P<query>.*?)^```$", re.M | re.S)


def api_section() -> str:
    text = README.read_text()
    start = text.index("\n## API\n")
    return text[start : text.index("\n## ", start + 1)]


def quick_start() -> tuple[str, dict[str, Any]]:
    """The URL and JSON body of the quick-start ``curl`` command."""
    match = CURL.search(api_section())
    assert match, "the API section has a curl … -d @- <<'EOF' … EOF example"
    return match["url"], json.loads(match["body"])


def graphql_examples() -> list[str]:
    return [m["query"] for m in GRAPHQL.finditer(api_section())]
