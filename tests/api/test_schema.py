"""``schema.graphql`` is the SDL of the current code."""

from __future__ import annotations

from pathlib import Path

from strawberry.printer import print_schema

from idgraph.api.schema import build_schema, sdl
from idgraph.config import ApiSettings

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "schema.graphql"


def test_schema_file_matches_the_code() -> None:
    assert SCHEMA_FILE.read_text() == sdl(), (
        "schema.graphql is stale: run `python -m idgraph.api.schema > schema.graphql`"
    )


def test_sdl_is_what_strawberry_export_schema_prints() -> None:
    assert sdl() == print_schema(build_schema(ApiSettings())) + "\n"
