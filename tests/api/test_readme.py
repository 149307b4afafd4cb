"""The README's quick start works verbatim against the demo dataset."""

from __future__ import annotations

from pathlib import Path

from idgraph.config import Settings
from idgraph.demo import write_demo_file
from idgraph.jsonl import ingest_file
from idgraph.service import IdentityGraph
from tests.api.conftest import Api, new_key, nodes
from tests.api.readme import graphql_examples, quick_start


async def load_demo(graph: IdentityGraph, tmp_path: Path) -> None:
    path = tmp_path / "demo-events.jsonl"
    write_demo_file(path)
    await ingest_file(graph, path, graph.settings.batch_size_for())


async def test_quick_start_curl_query(
    api: Api, graph: IdentityGraph, tmp_path: Path, settings: Settings
) -> None:
    await load_demo(graph, tmp_path)
    reader = await new_key(graph.store, settings, "demo-reader", "reader")
    url, headers, body = quick_start({"IDGRAPH_KEY": reader})
    assert url == f"http://{settings.api.host}:{settings.api.port}/graphql"
    assert headers["X-Purpose"] == "support"
    response = await api.client.post("/graphql", json=body, headers=headers)
    result = response.json()
    assert "errors" not in result, result
    alice = result["data"]["resolve"]
    assert {"kind": "email", "value": "alice@example.com"} in nodes(alice["identifiers"])
    assert nodes(alice["traits"])
    assert nodes(alice["devices"])
    assert alice["consents"]
    assert len(alice["interactions"]["edges"]) == 3
    assert alice["redacted"] == {"identifiers": 0, "traits": 0, "interactions": 0}


async def test_graphiql_examples(api: Api, graph: IdentityGraph, tmp_path: Path) -> None:
    await load_demo(graph, tmp_path)
    examples = graphql_examples()
    assert examples
    for query in examples:
        data = await api.data(query)
        if "explainLink" in data:
            assert data["explainLink"]["verdict"] == "LINKED"
