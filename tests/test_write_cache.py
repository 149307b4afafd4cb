"""The embedded store remembers nodes and customers between batches (see
``idgraph.store.write_cache``). Two store objects on one file stand for two processes:
whatever one writes, the other's next batch must see, as if it had remembered nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from idgraph.config import Settings
from idgraph.domain.model import Outcome, utcnow
from idgraph.domain.retention import Policy
from idgraph.service import IdentityGraph
from idgraph.store.sqlite import SqliteStore
from idgraph.store.write_cache import WriteCache
from tests.conftest import ERASURE_KEY
from tests.events import event


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[tuple[IdentityGraph, IdentityGraph]]:
    settings = Settings()
    one = SqliteStore(tmp_path / "shared.db", erasure_key=ERASURE_KEY)
    two = SqliteStore(tmp_path / "shared.db", erasure_key=ERASURE_KEY)
    yield IdentityGraph(one, settings), IdentityGraph(two, settings)
    await one.close()
    await two.close()


async def customer(graph: IdentityGraph, key: str) -> str | None:
    return await graph.customer_of(key)


async def test_a_merge_by_another_writer_is_seen(pair: tuple[IdentityGraph, IdentityGraph]):
    first, second = pair
    await first.ingest([event("email:a@example.com", "cookie:ca")])
    await first.ingest([event("email:b@example.com", "cookie:cb")])
    await second.ingest([event("cookie:ca", "cookie:cb")])  # merges a's and b's customers
    result = await first.ingest([event("email:a@example.com", "phone:+16502530001")])
    assert result.merges == 0
    assert len(set(result.outcomes[0].customer_ids)) == 1
    ids = {await customer(first, k) for k in ("email:b@example.com", "phone:+16502530001")}
    assert len(ids) == 1
    assert await first.check() == []


async def test_an_erasure_by_another_writer_is_seen(pair: tuple[IdentityGraph, IdentityGraph]):
    first, second = pair
    await first.ingest([event("email:gone@example.com", "cookie:gone")])
    await second.forget("email:gone@example.com")
    result = await first.ingest([event("email:gone@example.com", "cookie:new")])
    assert result.outcomes[0].outcome is Outcome.REJECTED
    assert await customer(first, "cookie:new") is None
    assert await first.check() == []


async def test_a_split_by_another_writer_is_seen(pair: tuple[IdentityGraph, IdentityGraph]):
    first, second = pair
    await first.ingest([event("user_id:u1", "email:u1@example.com", "cookie:c1")])
    await second.unlink("email:u1@example.com", "user_id:u1", ban=True)
    # The split-off email's customer is one node now; a stale one would be three.
    result = await first.ingest([event("email:u1@example.com", "user_id:u2")])
    assert result.merges == 0
    assert await customer(first, "user_id:u2") == await customer(first, "email:u1@example.com")
    assert await customer(first, "user_id:u2") != await customer(first, "user_id:u1")
    assert await first.check() == []


async def test_events_applied_by_another_writer_are_duplicates(
    pair: tuple[IdentityGraph, IdentityGraph],
):
    first, second = pair
    await first.ingest([event("email:d@example.com", event_id="evt-1")])
    await second.ingest([event("email:d@example.com", "cookie:d", event_id="evt-2")])
    result = await first.ingest([event("email:d@example.com", "cookie:d", event_id="evt-2")])
    assert result.outcomes[0].outcome is Outcome.DUPLICATE


async def test_interleaved_writers_end_as_one_writer_would(
    pair: tuple[IdentityGraph, IdentityGraph], tmp_path: Path
):
    """Alternate batches between the two writers, each growing the same customer past
    the limit of five emails; the partition equals one writer's."""
    batches = [
        [
            event(f"email:p{i}@example.com", f"cookie:c{i}"),
            event(f"cookie:c{i}", f"cookie:c{i - 1}"),
        ]
        for i in range(14)
    ]
    for i, batch in enumerate(batches):
        await pair[i % 2].ingest(batch)
    alone = SqliteStore(tmp_path / "alone.db", erasure_key=ERASURE_KEY)
    graph = IdentityGraph(alone, Settings())
    for batch in batches:
        await graph.ingest(batch)
    keys = [k for i in range(14) for k in (f"email:p{i}@example.com", f"cookie:c{i}")]

    async def partition(g: IdentityGraph) -> set[frozenset[str]]:
        by: dict[str | None, set[str]] = {}
        for key in keys:
            by.setdefault(await customer(g, key), set()).add(key)
        return {frozenset(v) for v in by.values()}

    assert await partition(pair[0]) == await partition(graph)
    assert await pair[0].check() == []
    await alone.close()


async def test_unlink_through_the_same_store_is_seen(tmp_path: Path):
    store = SqliteStore(tmp_path / "one.db", erasure_key=ERASURE_KEY)
    graph = IdentityGraph(store, Settings())
    await graph.ingest([event("user_id:u1", "email:u1@example.com", "cookie:c1")])
    await graph.unlink("email:u1@example.com", "user_id:u1", ban=True)
    await graph.ingest([event("email:u1@example.com", "user_id:u2")])
    assert await customer(graph, "user_id:u2") != await customer(graph, "user_id:u1")
    assert await graph.check() == []
    await store.close()


async def test_a_cache_past_its_bound_starts_again(tmp_path: Path):
    store = SqliteStore(tmp_path / "one.db", erasure_key=ERASURE_KEY)
    store._cache = WriteCache(max_nodes=3)
    graph = IdentityGraph(store, Settings())
    await graph.ingest([event("email:a@example.com", "cookie:a1", "cookie:a2")])
    assert len(store._cache.nodes) == 3
    await graph.ingest([event("cookie:a2", "cookie:a3")])
    assert store._cache.nodes == {}
    result = await graph.ingest([event("cookie:a3", "phone:+16502530002")])
    assert result.merges == 0
    assert await customer(graph, "phone:+16502530002") == await customer(graph, "cookie:a1")
    assert await graph.check() == []
    await store.close()


async def test_evidence_for_an_accepted_pair_keeps_its_first_event(tmp_path: Path):
    """A pair the store remembers as accepted is not written again: its link still
    names the evidence that made it."""
    store = SqliteStore(tmp_path / "one.db", erasure_key=ERASURE_KEY)
    graph = IdentityGraph(store, Settings())
    await graph.ingest([event("email:e@example.com", "cookie:e", event_id="first")])
    await graph.ingest([event("email:e@example.com", "cookie:e", event_id="again")])
    [link] = await store.links_of(["email:e@example.com"])
    assert (link.event_id, link.accepted) == ("first", True)
    await store.close()


async def test_a_pair_unlinked_by_another_writer_links_again(
    pair: tuple[IdentityGraph, IdentityGraph],
):
    """The first writer remembers the pair as accepted; after the second one unlinks
    it, new evidence must write the link again, or the merge would have no link."""
    first, second = pair
    await first.ingest([event("email:u@example.com", "cookie:u", event_id="one")])
    await second.unlink("email:u@example.com", "cookie:u")
    await first.ingest([event("email:u@example.com", "cookie:u", event_id="two")])
    assert await customer(first, "cookie:u") == await customer(first, "email:u@example.com")
    assert await first.check() == []


async def test_a_pair_unlinked_through_the_same_store_links_again(tmp_path: Path):
    store = SqliteStore(tmp_path / "one.db", erasure_key=ERASURE_KEY)
    graph = IdentityGraph(store, Settings())
    await graph.ingest([event("email:s@example.com", "cookie:s", event_id="one")])
    await graph.unlink("email:s@example.com", "cookie:s")
    await graph.ingest([event("email:s@example.com", "cookie:s", event_id="two")])
    [link] = await store.links_of(["email:s@example.com"])
    assert link.accepted
    assert await graph.check() == []
    await store.close()


async def test_customers_with_the_same_counts_share_them_and_grow_apart(tmp_path: Path):
    """Remembered customers share one read-only map per distinct per-kind counts; a
    batch that grows one of them leaves the others' counts as they were."""
    store = SqliteStore(tmp_path / "one.db", erasure_key=ERASURE_KEY)
    graph = IdentityGraph(store, Settings())
    await graph.ingest(
        [event("email:a@example.com", "cookie:a"), event("email:b@example.com", "cookie:b")]
    )
    ida, idb = [await customer(graph, f"email:{n}@example.com") for n in "ab"]
    assert ida is not None
    assert idb is not None
    counts = {c: store._cache.customers[c][1].kind_counts for c in (ida, idb)}
    assert counts[ida] is counts[idb]
    assert dict(counts[ida]) == {"email": 1, "cookie": 1}
    await graph.ingest([event("email:a@example.com", "cookie:a2")])
    assert dict(store._cache.customers[ida][1].kind_counts) == {"email": 1, "cookie": 2}
    assert dict(store._cache.customers[idb][1].kind_counts) == {"email": 1, "cookie": 1}
    assert await graph.check() == []
    await store.close()


async def test_a_node_another_writer_added_is_found_after_the_cache_held_every_node(
    pair: tuple[IdentityGraph, IdentityGraph],
):
    """A new file's nodes are all remembered, so the first store looks up no key it does
    not know, until another writer commits."""
    first, second = pair
    await first.ingest([event("email:a@example.com")])
    await second.ingest([event("email:b@example.com", "cookie:b")])
    result = await first.ingest([event("cookie:b", "phone:+16502530002")])
    assert result.new_nodes == 1
    b = await customer(first, "email:b@example.com")
    assert await customer(first, "phone:+16502530002") == b
    assert await first.check() == []


async def test_events_another_writer_applied_are_duplicates_after_the_cache_held_every_event(
    pair: tuple[IdentityGraph, IdentityGraph],
):
    """On a new file the first store keeps every event id and asks the file none, until
    another writer commits."""
    first, second = pair
    await first.ingest([event("email:e@example.com", event_id="evt-1")])
    again = await first.ingest([event("email:e@example.com", event_id="evt-1")])
    assert again.outcomes[0].outcome is Outcome.DUPLICATE
    await second.ingest([event("email:f@example.com", event_id="evt-2")])
    result = await first.ingest(
        [
            event("email:f@example.com", event_id="evt-2"),
            event("email:e@example.com", event_id="evt-1"),
            event("email:g@example.com", event_id="evt-3"),
        ]
    )
    outcomes = [o.outcome for o in result.outcomes]
    assert outcomes == [Outcome.DUPLICATE, Outcome.DUPLICATE, Outcome.ACCEPTED]


async def test_a_store_opened_on_a_file_with_events_asks_the_file(tmp_path: Path):
    settings = Settings()
    store = SqliteStore(tmp_path / "s.db", erasure_key=ERASURE_KEY)
    await IdentityGraph(store, settings).ingest([event("email:h@example.com", event_id="e-1")])
    await store.close()
    store = SqliteStore(tmp_path / "s.db", erasure_key=ERASURE_KEY)
    result = await IdentityGraph(store, settings).ingest(
        [event("email:h@example.com", event_id="e-1")]
    )
    await store.close()
    assert result.outcomes[0].outcome is Outcome.DUPLICATE


async def test_event_ids_past_the_bound_are_asked_of_the_file(tmp_path: Path):
    store = SqliteStore(tmp_path / "one.db", erasure_key=ERASURE_KEY)
    store._cache = WriteCache(max_nodes=3)
    graph = IdentityGraph(store, Settings())
    await graph.ingest([event("email:a@example.com", event_id=f"e-{i}") for i in range(2)])
    assert store._cache.events == {"e-0", "e-1"}
    await graph.ingest([event("email:a@example.com", event_id=f"e-{i}") for i in range(2, 4)])
    assert store._cache.events is None
    result = await graph.ingest([event("email:a@example.com", event_id="e-3")])
    assert result.outcomes[0].outcome is Outcome.DUPLICATE
    await store.close()


async def test_an_event_id_purged_through_the_same_store_is_applied_again(tmp_path: Path):
    """The cache kept every event id of the new file; a purge of event ids forgets them."""
    store = SqliteStore(tmp_path / "one.db", erasure_key=ERASURE_KEY)
    graph = IdentityGraph(store, Settings())
    await graph.ingest([event("email:a@example.com", event_id="e1")])
    step = await store.purge_batch(
        Policy.EVENT_IDS, utcnow() + timedelta(days=1), limit=100, after=None
    )
    assert step.deleted == 1
    again = await graph.ingest([event("email:a@example.com", event_id="e1")])
    assert again.outcomes[0].outcome is Outcome.ACCEPTED
    await store.close()
