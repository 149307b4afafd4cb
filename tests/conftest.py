"""Shared fixtures. ``store`` runs a test against every backend: SQLite always, Neo4j
when ``NEO4J_URI`` is set (``NEO4J_URI=bolt://127.0.0.1:7687 NEO4J_PASSWORD=… pytest``)."""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from idgraph.config import Neo4jSettings, Settings
from idgraph.domain.rules import Rules
from idgraph.service import IdentityGraph
from idgraph.store.port import Store
from idgraph.store.sqlite import SqliteStore

NEO4J_SKIP = (
    "Neo4j contract tests need a server: set NEO4J_URI=bolt://host:7687 "
    "(and NEO4J_USER, NEO4J_PASSWORD, NEO4J_DATABASE) to run them; the database is wiped"
)
# The erasure key of test stores (a real store derives it from the server secret).
ERASURE_KEY = b"test-erasure-key-".ljust(32, b"0")
# The server secret of API apps in tests (see ``server_secret``).
SECRET = "tests-only-server-secret-0123456789abcdef"


@pytest.fixture
def server_secret(monkeypatch: pytest.MonkeyPatch) -> str:
    """The server secret, from the environment, so that no test writes a secret file into
    the working directory."""
    monkeypatch.setenv("IDGRAPH_SECRET", SECRET)
    return SECRET


def neo4j_settings() -> Neo4jSettings:
    return Neo4jSettings(
        user=os.environ.get("NEO4J_USER", "neo4j"),
        password=os.environ.get("NEO4J_PASSWORD", ""),
        database=os.environ.get("NEO4J_DATABASE", "neo4j"),
    )


async def open_test_store(backend: str, tmp_path: Path) -> Store:
    if backend == "sqlite":
        return SqliteStore(tmp_path / "idgraph.db", erasure_key=ERASURE_KEY)
    uri = os.environ.get("NEO4J_URI")
    if not uri:
        pytest.skip(NEO4J_SKIP)
    from idgraph.store.neo4j import Neo4jStore

    return await Neo4jStore.open(uri, neo4j_settings(), erasure_key=ERASURE_KEY, clear=True)


def run_on_graph(
    backend: str, rules: Rules, body: Callable[[IdentityGraph], Awaitable[None]]
) -> None:
    """Run ``body`` on a graph over a fresh store: for hypothesis tests, whose examples
    each need an empty store (a function-scoped fixture would be shared by them)."""

    async def main() -> None:
        with tempfile.TemporaryDirectory() as tmp:
            store = await open_test_store(backend, Path(tmp))
            try:
                await body(IdentityGraph(store, Settings(rules=rules)))
            finally:
                await store.close()

    asyncio.run(main())


@pytest.fixture(params=["sqlite", pytest.param("neo4j", marks=pytest.mark.neo4j)])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    opened = await open_test_store(request.param, tmp_path)
    yield opened
    await opened.close()


@pytest.fixture
def settings() -> Settings:
    return Settings()


@pytest.fixture
def graph(store: Store, settings: Settings) -> IdentityGraph:
    return IdentityGraph(store, settings)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    skipped = [r for r in terminalreporter.stats.get("skipped", []) if "neo4j" in r.keywords]
    if skipped:
        terminalreporter.write_line(f"{len(skipped)} Neo4j tests skipped. {NEO4J_SKIP}.")
