"""The Neo4j tests' store: a fresh, wiped database on the server under test (skipped
without ``NEO4J_URI``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from idgraph.store.neo4j import Neo4jStore
from tests.conftest import open_test_store


@pytest.fixture
async def neo4j_store(tmp_path: Path) -> AsyncIterator[Neo4jStore]:
    store = await open_test_store("neo4j", tmp_path)
    assert isinstance(store, Neo4jStore)
    yield store
    await store.close()
