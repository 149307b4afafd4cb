"""Shared by the Neo4j tests: the server's address (or a skip) and the analyst queries."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from neo4j import AsyncGraphDatabase

from idgraph.domain.model import NodeRecord
from tests.conftest import NEO4J_SKIP, neo4j_settings

ANALYST_QUERIES = Path(__file__).parents[2] / "docs" / "analyst-queries.cypher"


def neo4j_uri() -> str:
    """The server under test, or skip the test with how to run it."""
    uri = os.environ.get("NEO4J_URI")
    if not uri:
        pytest.skip(NEO4J_SKIP)
    return uri


async def run_cypher(query: str, **params: Any) -> list[dict[str, Any]]:
    """A statement outside idgraph, as an analyst in Neo4j Browser would run it."""
    settings = neo4j_settings()
    async with AsyncGraphDatabase.driver(
        neo4j_uri(), auth=(settings.user, settings.password)
    ) as driver:
        records, _, _ = await driver.execute_query(query, params, database_=settings.database)
        return [r.data() for r in records]


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
