"""``Store.profiles``: a customer and the parts of it a read asks for, in one call, each
part exactly as the store's read of that part alone returns it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime

from idgraph.config import Settings
from idgraph.service import IdentityGraph
from idgraph.store.port import ImportBatch, InteractionPage, ProfileRead, Store
from idgraph.transfer import read_store
from tests.events import event

EVERYTHING = ProfileRead(
    nodes=True, consents=True, traits=True, interactions=InteractionPage(limit=2)
)


async def seed(graph: IdentityGraph) -> None:
    await graph.ingest(
        [
            event(
                "email:a@x.com",
                "cookie:ca",
                "device:da",
                at=f"2026-03-0{day}T00:00:00Z",
                traits={"city": f"City {day}"},
                consent={"purpose": "marketing", "status": "granted" if day % 2 else "denied"},
                interaction={"type": "login" if day == 2 else "page_view"},
            )
            for day in range(1, 5)
        ]
        + [event("email:b@x.com", interaction={"type": "page_view"})]
    )


async def test_a_profile_holds_what_each_read_of_a_part_returns(graph: IdentityGraph) -> None:
    await seed(graph)
    store = graph.store
    found = await store.profiles(["email:a@x.com", "email:b@x.com", "email:no@x.com"], EVERYTHING)
    assert set(found) == {"email:a@x.com", "email:b@x.com"}, "unknown keys are left out"
    by_id = {p.customer.id: p for p in found.values()}
    ids = list(by_id)
    assert (await store.customers(ids)) == {cid: p.customer for cid, p in by_id.items()}
    nodes, consents = await store.nodes_of(ids), await store.consents_of(ids)
    traits, pages = await store.traits_of(ids), await store.interactions_of(ids, limit=2)
    for cid, profile in by_id.items():
        assert profile.nodes == nodes[cid]
        assert profile.consents == consents[cid]
        assert profile.traits == traits[cid]
        assert profile.interactions == pages[cid]
    a = found["email:a@x.com"]
    assert [n.key for n in a.nodes or []] == ["cookie:ca", "device:da", "email:a@x.com"]
    assert [i.at.day for i in a.interactions or []] == [4, 3]


async def test_keys_of_one_customer_share_its_profile(graph: IdentityGraph) -> None:
    await seed(graph)
    found = await graph.store.profiles(["email:a@x.com", "cookie:ca"], EVERYTHING)
    assert found["email:a@x.com"] == found["cookie:ca"]


async def test_parts_not_asked_for_are_not_read(graph: IdentityGraph) -> None:
    await seed(graph)
    [profile] = (await graph.store.profiles(["cookie:ca"], ProfileRead())).values()
    assert profile.customer.size == 3
    assert (profile.nodes, profile.consents, profile.traits, profile.interactions) == (
        None,
        None,
        None,
        None,
    )


async def test_a_page_of_interactions_filtered_by_type(graph: IdentityGraph) -> None:
    await seed(graph)
    read = ProfileRead(interactions=InteractionPage(limit=10, types=("login",)))
    [profile] = (await graph.store.profiles(["email:a@x.com"], read)).values()
    assert [(i.type, i.at.day) for i in profile.interactions or []] == [("login", 2)]
    assert profile.nodes is None


async def test_an_absorbed_customer_id_is_an_alias_of_the_profile(graph: IdentityGraph) -> None:
    await seed(graph)
    before = await graph.store.profiles(["email:b@x.com"], ProfileRead())
    absorbed = before["email:b@x.com"].customer.id
    await graph.ingest([event("email:a@x.com", "email:b@x.com")])
    after = await graph.store.profiles(["email:b@x.com"], ProfileRead())
    assert absorbed in after["email:b@x.com"].customer.aliases


async def test_an_interaction_of_several_nodes_names_them_in_key_order(store: Store) -> None:
    """One interaction performed by several nodes (as an import may hold it) lists them
    in key order, however the import listed them: its first is its anchor."""
    graph = IdentityGraph(store, Settings())
    await graph.ingest(
        [event("email:a@x.com", "cookie:ca", "device:da", interaction={"type": "view"})]
    )
    batches = [batch async for batch in read_store(store, 100, at=datetime(2026, 3, 5, tzinfo=UTC))]
    performers = ("email:a@x.com", "device:da", "cookie:ca")
    for batch in batches:
        batch.interactions = [replace(i, keys=performers) for i in batch.interactions]
        batch.nodes.reverse()  # created in another order than their keys'

    async def replayed() -> AsyncIterator[ImportBatch]:
        for batch in batches:
            yield batch

    await store.import_all(replayed(), clear=True)
    in_key_order = ("cookie:ca", "device:da", "email:a@x.com")
    found = await store.profiles(["email:a@x.com"], ProfileRead(interactions=InteractionPage(5)))
    profile = found["email:a@x.com"]
    assert [i.keys for i in profile.interactions or []] == [in_key_order]
    pages = await store.interactions_of([profile.customer.id], limit=5)
    assert [i.keys for i in pages[profile.customer.id]] == [in_key_order]
