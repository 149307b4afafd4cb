"""Property tests: random ingest / unlink sequences against networkx as the oracle.

Each runs on every backend (Neo4j when NEO4J_URI is set); a fresh store per example.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import networkx as nx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from idgraph.domain.rules import Rules
from idgraph.service import IdentityGraph
from tests.conftest import run_on_graph

KEYS = (
    [f"email:e{i}@x.com" for i in range(4)]
    + [f"user_id:u{i}" for i in range(3)]
    + [f"cookie:c{i}" for i in range(8)]
    + [f"device:d{i}" for i in range(3)]
)
BACKENDS = ["sqlite", pytest.param("neo4j", marks=pytest.mark.neo4j)]
TIGHT = Rules(limits={"user_id": 1, "email": 2}, default_limit=3, max_size=6)
GENEROUS = Rules(limits={"user_id": 10, "email": 10}, default_limit=50, max_size=1000)

event_keys = st.lists(st.sampled_from(KEYS), min_size=1, max_size=4, unique=True).filter(
    lambda keys: sum(k.startswith("device:") for k in keys) <= 1  # an event has one device
)
operation = st.one_of(
    st.tuples(st.just("ingest"), event_keys),
    st.tuples(st.just("unlink"), st.sampled_from(KEYS), st.sampled_from(KEYS), st.booleans()),
)
property_settings = settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def raw(i: int, keys: list[str]) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "id": f"p{i}",
        "timestamp": f"2026-01-01T00:00:{i % 60:02d}Z",
        "source": "prop",
        "identifiers": [],
    }
    for key in keys:
        kind, value = key.split(":", 1)
        if kind == "device":
            raw["device"] = {"id": value}
        else:
            raw["identifiers"].append({"kind": kind, "value": value})
    return raw


async def partition(graph: IdentityGraph) -> set[frozenset[str]]:
    customers = await graph.store.customer_ids_of(KEYS)
    groups: dict[str, set[str]] = {}
    for key, cid in customers.items():
        groups.setdefault(cid, set()).add(key)
    return {frozenset(g) for g in groups.values()}


async def accepted_components(graph: IdentityGraph) -> set[frozenset[str]]:
    oracle = nx.Graph()
    oracle.add_nodes_from((await graph.store.customer_ids_of(KEYS)).keys())
    oracle.add_edges_from((k.a, k.b) for k in await graph.store.links_of(KEYS) if k.accepted)
    return {frozenset(c) for c in nx.connected_components(oracle)}


@pytest.mark.parametrize("backend", BACKENDS)
@property_settings
@given(events=st.lists(event_keys, min_size=1, max_size=25), batch=st.integers(1, 8))
def test_without_refusals_customers_are_components_of_the_evidence(
    backend: str, events: list[list[str]], batch: int
) -> None:
    async def body(graph: IdentityGraph) -> None:
        raws = [raw(i, keys) for i, keys in enumerate(events)]
        for start in range(0, len(raws), batch):
            await graph.ingest(raws[start : start + batch])
        evidence = nx.Graph()
        for keys in events:
            evidence.add_nodes_from(keys)
            nx.add_path(evidence, keys)
        assert await partition(graph) == {frozenset(c) for c in nx.connected_components(evidence)}
        assert await graph.check() == []

    run_on_graph(backend, GENEROUS, body)


@pytest.mark.parametrize("backend", BACKENDS)
@property_settings
@given(operations=st.lists(operation, min_size=1, max_size=30))
def test_under_rules_and_unlinks_customers_are_components_of_accepted_links(
    backend: str, operations: list[tuple[Any, ...]]
) -> None:
    async def body(graph: IdentityGraph) -> None:
        bans: list[tuple[str, str]] = []
        for i, op in enumerate(operations):
            if op[0] == "ingest":
                await graph.ingest([raw(i, op[1])])
                continue
            _, a, b, ban = op
            known = await graph.store.customer_ids_of([a, b])
            if a == b or len(known) < 2:
                continue
            await graph.unlink(a, b, ban=ban)
            parts = await graph.store.customer_ids_of([a, b])
            assert parts[a] != parts[b], "unlink separates the two"
            if ban:
                bans.append((a, b))
        assert await partition(graph) == await accepted_components(graph)
        customers = await graph.store.customer_ids_of(KEYS)
        for a, b in bans:
            assert customers[a] != customers[b], f"ban {a} — {b} broken"
        assert await graph.check() == []

    run_on_graph(backend, TIGHT, body)


@pytest.mark.parametrize("backend", BACKENDS)
@property_settings
@given(events=st.lists(event_keys, min_size=1, max_size=25), batch=st.integers(2, 25))
def test_batch_size_does_not_change_the_outcome(
    backend: str, events: list[list[str]], batch: int
) -> None:
    """Customers, and every link as stewards see it (first evidence, verdict, rule, when
    last refused): a pair seen many times in one batch is stored as one by one."""
    raws = [raw(i, keys) for i, keys in enumerate(events)]
    results: list[tuple[object, ...]] = []

    def ingest_in(size: int) -> Callable[[IdentityGraph], Awaitable[None]]:
        async def body(graph: IdentityGraph) -> None:
            for start in range(0, len(raws), size):
                await graph.ingest(raws[start : start + size])
            links = sorted(await graph.store.links_of(KEYS), key=lambda k: (k.a, k.b))
            refused = await graph.store.rejected_links(limit=len(KEYS) ** 2)
            results.append((await partition(graph), links, refused))
            assert await graph.check() == []

        return body

    run_on_graph(backend, TIGHT, ingest_in(1))
    run_on_graph(backend, TIGHT, ingest_in(batch))
    assert results[0] == results[1]


trait_report = st.tuples(
    st.sampled_from(KEYS[:4]),
    st.sampled_from(["tier", "city"]),
    st.integers(0, 3),
    st.integers(0, 2),
)


@pytest.mark.parametrize("backend", BACKENDS)
@property_settings
@given(reports=st.lists(trait_report, min_size=1, max_size=20), batch=st.integers(2, 20))
def test_batch_size_does_not_change_the_traits_kept(
    backend: str, reports: list[tuple[str, str, int, int]], batch: int
) -> None:
    """Per node and trait name the latest report wins, the last of equal times: reports
    out of order and tied in one batch are kept as one by one."""
    raws = [
        {**raw(i, [key]), "timestamp": f"2026-01-01T00:00:0{second}Z", "traits": {name: value}}
        for i, (key, name, value, second) in enumerate(reports)
    ]
    results: list[object] = []

    def ingest_in(size: int) -> Callable[[IdentityGraph], Awaitable[None]]:
        async def body(graph: IdentityGraph) -> None:
            for start in range(0, len(raws), size):
                await graph.ingest(raws[start : start + size])
            ids = sorted(set((await graph.store.customer_ids_of(KEYS)).values()))
            traits = await graph.store.traits_of(ids)
            results.append(
                sorted((t.key, t.name, t.value, t.at, t.event_id) for c in ids for t in traits[c])
            )

        return body

    run_on_graph(backend, TIGHT, ingest_in(1))
    run_on_graph(backend, TIGHT, ingest_in(batch))
    assert results[0] == results[1]
