"""Shared by the Neo4j tests: the server's address (or a skip) and the analyst queries."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest

from idgraph.domain.model import NodeRecord
from tests.conftest import NEO4J_SKIP

ANALYST_QUERIES = Path(__file__).parents[2] / "docs" / "analyst-queries.cypher"


def neo4j_uri() -> str:
    """The server under test, or skip the test with how to run it."""
    uri = os.environ.get("NEO4J_URI")
    if not uri:
        pytest.skip(NEO4J_SKIP)
    return uri


@dataclass(frozen=True)
class AnalystQuery:
    comment: str
    text: str

    @property
    def parameters(self) -> set[str]:
        return set(re.findall(r"\$(\w+)", self.text))


def analyst_queries(path: Path = ANALYST_QUERIES) -> list[AnalystQuery]:
    """The file's statements, split on ``;``; each one's comment is its last ``//`` line
    before the Cypher begins."""
    queries = []
    for chunk in path.read_text().split(";"):
        lines = [line.strip() for line in chunk.strip().splitlines()]
        if not any(lines):
            continue
        comments = []
        while lines and (lines[0].startswith("//") or not lines[0]):
            comments.append(lines.pop(0))
        queries.append(AnalystQuery(comments[-1] if comments else "", "\n".join(lines)))
    return queries


def partition(nodes: Iterable[NodeRecord]) -> set[frozenset[str]]:
    """Customers as sets of identity keys, whatever their ids."""
    by_customer: dict[str, set[str]] = {}
    for n in nodes:
        by_customer.setdefault(n.customer_id, set()).add(n.key)
    return {frozenset(keys) for keys in by_customer.values()}
