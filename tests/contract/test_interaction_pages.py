"""Pages of a customer's interactions, walked with any page size and filters, are its
whole newest-first list filtered, in order. The embedded store reads only each node's
newest interactions for a page (tests/test_sqlite_scans.py: a large customer's page
costs little), which must not change what a page holds; the whole list, read with a
limit above any node's count, is every interaction ranked."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from idgraph.service import IdentityGraph
from idgraph.store.port import InteractionView
from tests.conftest import run_on_graph
from tests.contract.test_properties import BACKENDS, GENEROUS, event_keys, property_settings
from tests.events import event

TYPES = ("view", "buy", "call")
SECONDS = 4  # few distinct times: many interactions share one
EVERYTHING = 1_000

performed = st.tuples(event_keys, st.integers(0, SECONDS - 1), st.sampled_from(TYPES))


def at(second: int) -> datetime:
    return datetime(2026, 3, 1, 12, 0, second, tzinfo=UTC)


def passes(i: InteractionView, types: list[str] | None, since: datetime | None) -> bool:
    return (types is None or i.type in types) and (since is None or i.at >= since)


@pytest.mark.parametrize("backend", BACKENDS)
@property_settings
@given(
    events=st.lists(performed, min_size=1, max_size=30),
    size=st.integers(1, 4),
    types=st.none() | st.lists(st.sampled_from(TYPES), min_size=1, unique=True),
    since=st.none() | st.integers(0, SECONDS - 1).map(at),
)
def test_pages_walk_the_filtered_newest_first_list(
    backend: str,
    events: list[tuple[list[str], int, str]],
    size: int,
    types: list[str] | None,
    since: datetime | None,
) -> None:
    async def body(graph: IdentityGraph) -> None:
        await graph.ingest(
            [
                event(*keys, at=at(second).isoformat(), interaction={"type": kind})
                for keys, second, kind in events
            ]
        )
        store = graph.store
        ids = sorted(set((await store.customer_ids_of([k for e in events for k in e[0]])).values()))
        everything = await store.interactions_of(ids, limit=EVERYTHING)
        assert sum(map(len, everything.values())) == len(events)
        wanted = {}
        for cid, interactions in everything.items():
            assert interactions == sorted(interactions, key=lambda i: (i.at, i.id), reverse=True)
            wanted[cid] = [i for i in interactions if passes(i, types, since)]

        first = await store.interactions_of(ids, limit=size, types=types, since=since)
        assert first == {cid: found[:size] for cid, found in wanted.items()}
        for cid in ids:
            walked: list[InteractionView] = []
            before = None
            while True:
                page = (
                    await store.interactions_of(
                        [cid], limit=size, before=before, types=types, since=since
                    )
                )[cid]
                walked += page
                if len(page) < size:
                    break
                before = (page[-1].at, page[-1].id)
            assert walked == wanted[cid]

    run_on_graph(backend, GENEROUS, body)
