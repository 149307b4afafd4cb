"""Neo4j checks that need no server: where the Cypher lives, how it is written, the
analyst queries file, error translation and the CLI's Neo4j commands on SQLite."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from idgraph.cli import main
from idgraph.config import Neo4jSettings
from idgraph.errors import StoreUnavailable
from idgraph.store import cypher
from idgraph.store.neo4j import Neo4jStore
from tests.conftest import ERASURE_KEY
from tests.neo4j.helpers import ANALYST_QUERIES, analyst_queries

PACKAGE = Path(cypher.__file__).parents[1]
CYPHER_WORDS = re.compile(r"\b(MATCH|MERGE|CREATE|RETURN|UNWIND|DETACH DELETE)\b")


def _constants(tree: ast.Module) -> dict[str, ast.expr]:
    return {
        node.targets[0].id: node.value
        for node in tree.body
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
    }


def test_every_cypher_constant_is_a_plain_literal_with_parameters_only() -> None:
    tree = ast.parse((PACKAGE / "store" / "cypher.py").read_text())
    constants = _constants(tree)
    assert len(constants) > 30
    for name, value in constants.items():
        assert name.isupper(), name
        # A literal: no f-string, no concatenation, no .format(), no % formatting.
        queries = ast.literal_eval(value)
        if isinstance(queries, str):
            queries = (queries,)
        elif isinstance(queries, dict):
            queries = tuple(queries.values())
        for query in queries:
            assert isinstance(query, str), name
            assert not re.search(r"\{\s*\w*\s*\}|%[sd(]", query), f"{name}: a format placeholder"
            quoted = set(re.findall(r"'([^']*)'", query))
            assert quoted <= {"writer", "audit_seq"}, f"{name}: values must be $parameters"


@pytest.mark.parametrize("module", ["neo4j.py", "neo4j_segments.py", "neo4j_retention.py"])
def test_every_statement_the_adapter_runs_comes_from_the_cypher_module(module: str) -> None:
    """The segment compiler (neo4j_segments.py) joins cypher.py's fragments; it holds
    no Cypher of its own beyond the connectives AND, OR, NOT and WHERE."""
    tree = ast.parse((PACKAGE / "store" / module).read_text())
    docstrings = {
        ast.get_docstring(node, clean=False)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
    }
    inline = [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and node.value not in docstrings
        and CYPHER_WORDS.search(node.value)
    ]
    assert inline == []


def test_only_the_adapter_imports_the_neo4j_driver() -> None:
    importers = sorted(
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if re.search(r"^\s*(from neo4j\b|import neo4j\b)", path.read_text(), re.MULTILINE)
    )
    assert importers == ["store/neo4j.py"]


def test_schema_is_idempotent_community_syntax() -> None:
    for statement in cypher.SCHEMA:
        assert " IF NOT EXISTS " in statement
        assert "IS NODE KEY" not in statement, "node key constraints are Enterprise-only"
        assert "IS NOT NULL" not in statement, "existence constraints are Enterprise-only"
    created = {statement.split()[2] for statement in cypher.SCHEMA}
    for statement in cypher.RETIRED_SCHEMA:
        assert statement.startswith("DROP CONSTRAINT ")
        assert statement.endswith(" IF EXISTS")
        assert statement.split()[2] not in created


def test_analyst_queries_each_have_a_comment_and_a_body() -> None:
    queries = analyst_queries()
    assert len(queries) >= 8
    documented = set(re.findall(r":param (\w+) =>", ANALYST_QUERIES.read_text()))
    for query in queries:
        assert query.comment.startswith("// "), query.text
        assert len(query.comment) > 20, query.text
        assert query.text, query.comment
        assert "//" not in query.text, query.comment
        assert query.parameters <= documented, f"{query.comment}: undocumented parameter"


async def test_an_unreachable_server_is_store_unavailable() -> None:
    with pytest.raises(StoreUnavailable, match="unreachable"):
        await Neo4jStore.open(
            "bolt://127.0.0.1:1", Neo4jSettings(password="x"), erasure_key=ERASURE_KEY
        )


def test_export_needs_a_file_or_a_target(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--store", f"sqlite:///{tmp_path / 'g.db'}", "export"]) == 2
    assert "--to neo4j://" in capsys.readouterr().err


def test_export_to_an_unreachable_server_fails_cleanly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = f"sqlite:///{tmp_path / 'g.db'}"
    assert main(["--store", store, "export", "--to", "bolt://127.0.0.1:1", "--no-progress"]) == 2
    assert "unreachable" in capsys.readouterr().err


def test_init_schema_on_sqlite_has_nothing_to_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--store", f"sqlite:///{tmp_path / 'g.db'}", "init-schema"]) == 0
    assert capsys.readouterr().out.startswith("ok:")
