"""DataLoaders: a query over N customers costs a bounded number of store calls."""

from __future__ import annotations

from collections import Counter
from typing import Any

from idgraph.config import Settings
from idgraph.service import IdentityGraph
from idgraph.store.port import Store
from tests.api.conftest import nodes, open_api
from tests.events import event

PEOPLE = 8


class CountingStore:
    """Forwards to a store and counts calls per method."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.calls: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._store, name)
        if not callable(attr):
            return attr

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            return attr(*args, **kwargs)

        return counted


def reads(calls: Counter[str]) -> dict[str, int]:
    """The store calls but audit writes, which a query leaves to the application's
    writer: they may land after its response (see tests/api/test_audit_writer.py)."""
    return {name: n for name, n in calls.items() if name != "append_audit"}


async def seed(graph: IdentityGraph) -> None:
    await graph.ingest(
        [
            event(
                f"email:p{n}@x.com",
                f"cookie:c{n}",
                f"device:d{n}",
                traits={"name": f"P{n}"},
                consent={"purpose": "marketing", "status": "granted"},
                interaction={"type": "page_view"},
            )
            for n in range(PEOPLE)
        ]
    )
    for n in range(PEOPLE):  # refused links, for conflicts
        await graph.ingest([event(f"user_id:a{n}", f"email:p{n}@x.com")])
        await graph.ingest([event(f"user_id:b{n}", f"email:p{n}@x.com")])


FIELDS = (
    "id size identifiers { edges { node { value customer { id } } } } "
    "devices { edges { node { id } } } traits { edges { node { name value } } } "
    "consents { status } "
    "interactions(first: 5) { totalCount edges { node { type } } }"
)


async def test_resolving_many_customers_costs_one_call_per_kind_of_data(
    store: Store, settings: Settings, graph: IdentityGraph
) -> None:
    await seed(graph)
    counting = CountingStore(store)
    aliases = " ".join(
        f'p{n}: resolve(identifier: {{kind: "email", value: "p{n}@x.com"}}) {{ {FIELDS} }}'
        for n in range(PEOPLE)
    )
    async for api in open_api(settings, counting):  # type: ignore[arg-type]
        counting.calls.clear()  # the key made for the client
        data = await api.data(f"{{ {aliases} }}")
    assert len({c["id"] for c in data.values()}) == PEOPLE
    assert all(nodes(c["traits"]) and c["consents"] and nodes(c["devices"]) for c in data.values())
    assert all(c["interactions"]["totalCount"] == 1 for c in data.values())
    assert counting.calls == {
        "key_by_hash": 1,
        "profiles": 1,  # customers, nodes, traits, consents and interactions in one read
        "count_interactions": 1,
        "append_audit": 1,  # every resolve of the request, in one write
    }


async def test_a_resolve_reads_its_customer_in_one_call_whatever_the_fragments(
    store: Store, settings: Settings, graph: IdentityGraph
) -> None:
    """The parts a selection asks for are read up front, fragments included; a page the
    forecast cannot serve (a cursor) is read by its field, and answers as before."""
    await seed(graph)
    counting = CountingStore(store)
    query = """query($id: IdentifierInput!, $n: Int) {
      resolve(identifier: $id) { ...ids ... on Customer { traits { edges { node { name } } } }
        consents { status } interactions(first: $n) { edges { cursor node { type } } } } }
    fragment ids on Customer {
      identifiers { edges { node { value } } } devices { edges { node { id } } } }"""
    variables = {"id": {"kind": "email", "value": "p1@x.com"}, "n": 1}
    async for api in open_api(settings, counting):  # type: ignore[arg-type]
        counting.calls.clear()  # the key made for the client
        first = (await api.data(query, variables))["resolve"]
        read_first = reads(counting.calls)
        counting.calls.clear()
        after = query.replace("first: $n", "first: $n, after: $after").replace(
            "$n: Int", "$n: Int, $after: String"
        )
        cursor = first["interactions"]["edges"][0]["cursor"]
        second = (await api.data(after, {**variables, "after": cursor}))["resolve"]
    assert read_first == {"key_by_hash": 1, "profiles": 1}
    assert {"value": "p1@x.com"} in nodes(first["identifiers"])
    assert nodes(first["devices"])
    assert nodes(first["traits"]) == [{"name": "name"}]
    assert first["consents"] == [{"status": "GRANTED"}]
    assert [e["node"]["type"] for e in first["interactions"]["edges"]] == ["page_view"]
    assert second["interactions"]["edges"] == []
    assert counting.calls["interactions_of"] == 1


async def test_any_page_of_a_customers_nodes_and_traits_comes_from_the_one_read(
    store: Store, settings: Settings, graph: IdentityGraph
) -> None:
    await seed(graph)
    counting = CountingStore(store)
    query = """query($id: IdentifierInput!, $after: String) {
      resolve(identifier: $id) {
        identifiers(first: 1, after: $after) { totalCount edges { cursor node { value } } }
        devices(first: 1) { edges { node { value } } } traits(first: 1) { totalCount } } }"""
    variables = {"id": {"kind": "email", "value": "p1@x.com"}}
    async for api in open_api(settings, counting):  # type: ignore[arg-type]
        first = (await api.data(query, variables))["resolve"]
        cursor = first["identifiers"]["edges"][0]["cursor"]
        counting.calls.clear()
        second = (await api.data(query, {**variables, "after": cursor}))["resolve"]
    assert reads(counting.calls) == {"profiles": 1}  # the key is cached
    assert first["identifiers"]["totalCount"] == second["identifiers"]["totalCount"] == 3
    assert [n["value"] for n in nodes(first["identifiers"])] == ["c1"]
    assert [n["value"] for n in nodes(second["identifiers"])] == ["p1@x.com"]


async def test_a_page_of_conflicts_with_their_customers_is_batched(
    store: Store, settings: Settings, graph: IdentityGraph
) -> None:
    await seed(graph)
    counting = CountingStore(store)
    node = f"customerA {{ {FIELDS} }} customerB {{ id }}"
    query = f"{{ conflicts(first: 10) {{ edges {{ node {{ {node} }} }} }} }}"
    async for api in open_api(settings, counting):  # type: ignore[arg-type]
        counting.calls.clear()  # the key made for the client
        data = await api.data(query)
    assert len(data["conflicts"]["edges"]) == PEOPLE
    assert counting.calls == {
        "key_by_hash": 1,
        "rejected_links": 1,
        "customer_ids_of": 1,
        "customers": 1,
        "nodes_of": 1,
        "traits_of": 1,
        "consents_of": 1,
        "interactions_of": 1,
        "count_interactions": 1,
    }


async def test_the_customers_an_ingest_touched_are_batched(
    store: Store, settings: Settings
) -> None:
    counting = CountingStore(store)
    events = ", ".join(
        f'{{id: "i{n}", timestamp: "2026-03-01T00:00:00Z", source: "web", '
        f'identifiers: [{{kind: "email", value: "p{n}@x.com"}}]}}'
        for n in range(PEOPLE)
    )
    mutation = f"mutation {{ ingest(events: [{events}]) {{ customers {{ {FIELDS} }} }} }}"
    async for api in open_api(settings, counting):  # type: ignore[arg-type]
        counting.calls.clear()  # the key made for the client
        data = await api.data(mutation)
    assert len(data["ingest"]["customers"]) == PEOPLE
    assert counting.calls == {
        "key_by_hash": 1,
        "write_batch": 1,
        "customers": 1,
        "nodes_of": 1,
        "traits_of": 1,
        "consents_of": 1,
        "interactions_of": 1,
        "count_interactions": 1,
        "append_audit": 1,
    }
