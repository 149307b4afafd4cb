"""``Store.trait_values`` (the trait columns of a segment export) on every backend: for
any graph, the value of each asked trait is the one ``traits_of`` + ``merge_traits``
give (ties on time broken by event id, then node key), in the same order of names."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from idgraph.domain.consent import DEFAULT_PURPOSES
from idgraph.domain.model import utcnow
from idgraph.domain.profile import merge_traits
from idgraph.domain.rules import Rules
from idgraph.domain.segment import parse_filter
from idgraph.segments import export
from idgraph.service import IdentityGraph
from idgraph.store.port import SegmentQuery, Store
from tests.conftest import run_on_graph
from tests.events import event

KEYS = ["email:a@x.com", "email:b@x.com", "email:c@x.com", "cookie:c1", "cookie:c2", "phone:1"]
NAMES = ["city", "tier", "age"]
VALUES = ["Lima", "lima", "", 0, 1, 1.5, True, False, [1, "a"], {"k": "v"}]
# Few times, so that reports of one trait often share one: the event id decides.
TIMES = ["2026-01-01T00:00:00Z", "2026-01-01T00:00:00.000001Z", "2026-02-01T00:00:00+05:00"]
# Event id prefixes whose text order differs from the order of the events.
PREFIXES = ["b", "a", "B", "é", "z9", "z10", "\U0001d518"]


async def merged(store: Store, ids: list[str], names: set[str]) -> dict[str, dict[str, Any]]:
    """The reference: every report of each customer, merged, then the asked names kept."""
    reports = await store.traits_of(ids)
    return {
        cid: {n: t.value for n, t in merge_traits(reports[cid]).items() if n in names}
        for cid in ids
    }


@st.composite
def raw_event(draw: st.DrawFn, i: int) -> dict[str, Any]:
    keys = draw(st.lists(st.sampled_from(KEYS), min_size=1, max_size=2, unique=True))
    names = draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=3, unique=True))
    return event(
        *keys,
        event_id=f"{draw(st.sampled_from(PREFIXES))}-{i}",
        at=draw(st.sampled_from(TIMES)),
        traits={n: draw(st.sampled_from(VALUES)) for n in names},
    )


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("neo4j", marks=pytest.mark.neo4j)])
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    batches=st.lists(st.integers(1, 4), min_size=1, max_size=4),
    unlink=st.booleans(),
    data=st.data(),
)
def test_trait_values_are_the_merged_traits(
    backend: str, batches: list[int], unlink: bool, data: st.DataObject
) -> None:
    async def body(graph: IdentityGraph) -> None:
        store, seq = graph.store, 0
        for size in batches:
            await graph.ingest([data.draw(raw_event(seq + j)) for j in range(size)])
            seq += size
        if unlink:  # a split moves reports between customers
            known = await store.customer_ids_of(KEYS[:2])
            if len(known) == 2 and len(set(known.values())) == 1:
                await graph.unlink(KEYS[0], KEYS[1])
        ids = [c.id async for batch in store.iter_customers() for c in batch]
        ids += ["no-such-customer"]
        names = set(data.draw(st.lists(st.sampled_from([*NAMES, "absent"]), unique=True)))
        found = await store.trait_values(ids, names)
        expected = await merged(store, ids, names)
        assert {cid: list(v.items()) for cid, v in found.items()} == {
            cid: list(v.items()) for cid, v in expected.items()
        }

    run_on_graph(backend, Rules(limits={}, default_limit=50, max_size=1000), body)


async def test_export_columns_are_the_merged_traits(graph: IdentityGraph) -> None:
    await graph.ingest(
        [
            event("email:a@x.com", event_id="b-1", traits={"city": "Lima", "tier": "gold"}),
            # Same time, later event id: wins.
            event("email:a@x.com", "cookie:c1", event_id="c-2", traits={"city": "Cusco"}),
            event("cookie:c1", event_id="a-3", at="2026-01-01T00:00:00Z", traits={"city": "Old"}),
        ]
    )
    everyone = SegmentQuery(parse_filter({"all": []}, []), DEFAULT_PURPOSES, utcnow())
    out = io.StringIO()

    async def audit(ids: list[str]) -> None:
        pass

    await export(
        graph.store, everyone, out, format="csv", traits=["city", "age", "tier"], audit=audit
    )
    [row] = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert (row["size"], row["city"], row["age"], row["tier"]) == ("2", "Cusco", "", "gold")
