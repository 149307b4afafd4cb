"""The segment contract (``Store.segment_page``, ``count_segment``, ``iter_segment`` and
saved segments), on every backend. The meaning of each condition is
:func:`idgraph.domain.segment.matches`; the property test at the end compares a store's
members with it over random graphs and filters, on summaries built from the store's
ordinary reads (never from its segment queries)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from idgraph.domain.consent import DEFAULT_PURPOSES
from idgraph.domain.model import ConsentStatus, utcnow
from idgraph.domain.rules import Rules
from idgraph.domain.segment import (
    CustomerSummary,
    SavedSegment,
    matches,
    parse_filter,
    summarize,
    visible,
)
from idgraph.errors import NotFound
from idgraph.service import IdentityGraph
from idgraph.store.port import SegmentQuery, SegmentSort, Store
from tests.conftest import run_on_graph
from tests.events import event

PURPOSES = DEFAULT_PURPOSES
NAMES = [p.name for p in PURPOSES]
MARKETING = next(p for p in PURPOSES if p.name == "marketing")
SUPPORT = next(p for p in PURPOSES if p.name == "support")


def query(raw: object, visible_to: str | None = None, now: datetime | None = None) -> SegmentQuery:
    purpose = next((p for p in PURPOSES if p.name == visible_to), None)
    return SegmentQuery(parse_filter(raw, NAMES), PURPOSES, now or utcnow(), purpose)


async def members(store: Store, raw: object, visible_to: str | None = None) -> set[str]:
    """The members, by the key ``email:…`` of each (the tests give every customer one)."""
    page = await store.segment_page(query(raw, visible_to), first=1000)
    assert (
        page.total_count == len(page.customers) == await store.count_segment(query(raw, visible_to))
    )
    nodes = await store.nodes_of([c.id for c in page.customers])
    return {n.key for ns in nodes.values() for n in ns if n.kind == "email"}


async def customer(graph: IdentityGraph, key: str) -> str:
    found = await graph.customer_of(key)
    assert found is not None
    return found


async def seed(graph: IdentityGraph) -> None:
    await graph.ingest(
        [
            event(
                "email:lima1@x.com",
                "crm_id:CRM-001",
                source="crm",
                traits={"city": "Lima", "age": 31, "joined": "2025-06-01T00:00:00Z"},
            ),
            event(
                "email:lima1@x.com",
                interaction={"type": "purchase", "channel": "web"},
                at="2026-02-01T00:00:00Z",
            ),
            event(
                "email:lima1@x.com",
                interaction={"type": "purchase", "channel": "pos"},
                at="2026-02-02T00:00:00Z",
                consent={"purpose": "marketing", "status": "granted"},
            ),
            event(
                "email:lima2@x.com",
                "cookie:c2",
                traits={"city": "Lima", "age": "forty"},
                interaction={"type": "purchase", "channel": "web"},
                at="2025-12-01T00:00:00Z",
            ),
            event(
                "email:cusco@x.com",
                "device:d3",
                traits={"city": "Cusco", "age": 45.0, "joined": "2026-01-01T05:00:00+05:00"},
                interaction={"type": "login", "channel": "app"},
                consent={"purpose": "marketing", "status": "denied"},
            ),
            event("email:none@x.com", source="pos", traits={"tier": "basic"}),
        ]
    )


LIMA1, LIMA2, CUSCO, NONE = (
    "email:lima1@x.com",
    "email:lima2@x.com",
    "email:cusco@x.com",
    ("email:none@x.com"),
)
EVERYONE = {LIMA1, LIMA2, CUSCO, NONE}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"all": []}, EVERYONE),
        ({"any": []}, set()),
        ({"trait": {"name": "city", "eq": "Lima"}}, {LIMA1, LIMA2}),
        ({"trait": {"name": "city", "eq": "lima"}}, set()),
        ({"not": {"trait": {"name": "city", "eq": "Lima"}}}, {CUSCO, NONE}),
        ({"trait": {"name": "city", "in": ["Cusco", "Tacna"]}}, {CUSCO}),
        ({"trait": {"name": "age", "exists": True}}, {LIMA1, LIMA2, CUSCO}),
        ({"trait": {"name": "age", "exists": False}}, {NONE}),
        ({"trait": {"name": "age", "gte": 31}}, {LIMA1, CUSCO}),
        ({"trait": {"name": "age", "eq": 45}}, {CUSCO}),
        ({"trait": {"name": "age", "gt": 31, "lte": 45}}, {CUSCO}),
        ({"not": {"trait": {"name": "age", "lt": 100}}}, {LIMA2, NONE}),
        ({"trait": {"name": "joined", "lt": "2026-01-01T00:00:00Z"}}, {LIMA1}),
        ({"trait": {"name": "joined", "lte": "2026-01-01T00:00:00Z"}}, {LIMA1, CUSCO}),
        ({"trait": {"name": "joined", "eq": "2025-06-01T00:00:00Z"}}, {LIMA1}),
        ({"identifier": {"kind": "crm_id"}}, {LIMA1}),
        ({"identifier": {"kind": "crm_id", "prefix": "CRM-0"}}, {LIMA1}),
        ({"identifier": {"kind": "crm_id", "prefix": "crm-0"}}, set()),
        ({"identifier": {"kind": "device"}}, {CUSCO}),
        ({"interactions": {"type": "purchase", "atLeast": 2}}, {LIMA1}),
        ({"interactions": {"type": "purchase"}}, {LIMA1, LIMA2}),
        ({"interactions": {"channel": "web"}}, {LIMA1, LIMA2}),
        ({"interactions": {"since": "2026-01-01T00:00:00Z"}}, {LIMA1, CUSCO}),
        ({"interactions": {"atLeast": 0}}, EVERYONE),
        ({"not": {"interactions": {"type": "login", "channel": "app"}}}, {LIMA1, LIMA2, NONE}),
        ({"consent": {"purpose": "marketing", "status": "GRANTED"}}, {LIMA1}),
        ({"consent": {"purpose": "marketing", "status": "DENIED"}}, {LIMA2, CUSCO, NONE}),
        ({"consent": {"purpose": "support", "status": "GRANTED"}}, EVERYONE),
        ({"source": "crm"}, {LIMA1}),
        ({"source": "pos"}, {NONE}),
        ({"size": {"gte": 2}}, {LIMA1, LIMA2, CUSCO}),
        ({"size": {"eq": 1}}, {NONE}),
        (
            {
                "all": [
                    {"trait": {"name": "city", "eq": "Lima"}},
                    {"interactions": {"type": "purchase", "atLeast": 2}},
                    {"consent": {"purpose": "marketing", "status": "GRANTED"}},
                ]
            },
            {LIMA1},
        ),
        (
            {"any": [{"source": "pos"}, {"trait": {"name": "city", "eq": "Cusco"}}]},
            {CUSCO, NONE},
        ),
        # Empty all/any beside conditions that look at a customer's nodes (Neo4j 5.13's
        # planner failed on a constant beside subquery expressions, found by the
        # property test below).
        (
            {
                "any": [
                    {"size": {"eq": 1}},
                    {"all": [{"all": []}, {"any": [{"identifier": {"kind": "crm_id"}}] * 2}]},
                ]
            },
            {LIMA1, NONE},
        ),
        (
            {"any": [{"any": []}, {"identifier": {"kind": "device"}}, {"size": {"eq": 1}}]},
            {CUSCO, NONE},
        ),
        ({"all": [{"any": []}, {"identifier": {"kind": "device"}}]}, set()),
        ({"any": [{"all": []}, {"identifier": {"kind": "device"}}]}, EVERYONE),
        ({"not": {"all": [{"all": []}, {"identifier": {"kind": "device"}}]}}, {LIMA1, LIMA2, NONE}),
        ({"any": [{"size": {"eq": 1}}, {"not": {"any": []}}]}, EVERYONE),
    ],
)
async def test_each_condition_selects_what_it_says(
    graph: IdentityGraph, raw: object, expected: set[str]
) -> None:
    await seed(graph)
    assert await members(graph.store, raw) == expected


async def test_trait_values_compare_only_with_their_own_type(graph: IdentityGraph) -> None:
    values: dict[str, Any] = {
        "true": True,
        "one": 1,
        "text-one": "1",
        "null": None,
        "list": [1],
        "date-only": "2026-01-01",
        "spaced": "2026-01-01 00:00:00Z",
        "instant": "2026-01-01T00:00:00Z",
    }
    await graph.ingest([event(f"email:{n}@x.com", traits={"v": v}) for n, v in values.items()])

    async def who(ops: dict[str, Any]) -> set[str]:
        found = await members(graph.store, {"trait": {"name": "v", **ops}})
        return {key.removeprefix("email:").removesuffix("@x.com") for key in found}

    assert await who({"eq": 1}) == {"one"}
    assert await who({"eq": 1.0}) == {"one"}
    assert await who({"eq": "1"}) == {"text-one"}
    assert await who({"eq": True}) == {"true"}
    assert await who({"gte": 0}) == {"one"}, "booleans and texts are not numbers"
    assert await who({"in": [True, "1"]}) == {"true", "text-one"}
    assert await who({"exists": True}) == set(values), "a null value exists"
    assert await who({"gte": "2026-01-01T00:00:00Z"}) == {"instant"}, "RFC 3339 only"
    assert await who({"eq": "2026-01-01T00:00:00Z"}) == {"instant"}


async def test_the_latest_report_wins_across_the_customers_nodes(graph: IdentityGraph) -> None:
    same_time = "2026-02-01T00:00:00Z"
    await graph.ingest(
        [
            event("email:a@x.com", at=same_time, event_id="e2", traits={"city": "Lima"}),
            event("email:b@x.com", at=same_time, event_id="e1", traits={"city": "Cusco"}),
        ]
    )
    await graph.ingest([event("email:a@x.com", "email:b@x.com")])
    assert await members(graph.store, {"trait": {"name": "city", "eq": "Lima"}}) == {
        "email:a@x.com",
        "email:b@x.com",
    }, "same time: the later event id wins"
    assert await members(graph.store, {"trait": {"name": "city", "eq": "Cusco"}}) == set()


async def test_created_and_updated_at_compare_the_customers_times(graph: IdentityGraph) -> None:
    await graph.ingest([event("email:old@x.com")])
    [old] = (await graph.store.customers([await customer(graph, "email:old@x.com")])).values()
    await asyncio.sleep(0.002)  # a later batch time, not a timed assertion
    await graph.ingest([event("email:new@x.com")])
    at = old.created_at.isoformat()
    assert await members(graph.store, {"createdAt": {"lte": at}}) == {"email:old@x.com"}
    assert await members(graph.store, {"createdAt": {"gt": at}}) == {"email:new@x.com"}
    assert await members(graph.store, {"updatedAt": {"eq": at}}) == {"email:old@x.com"}


async def test_a_purpose_lists_and_counts_only_customers_it_may_see(graph: IdentityGraph) -> None:
    await seed(graph)
    assert await members(graph.store, {"all": []}, visible_to="marketing") == {LIMA1}
    assert await members(graph.store, {"all": []}, visible_to="support") == EVERYONE
    # An identifier's own grant shows that identifier, so the customer is seen.
    await graph.set_consent("cookie:c2", "marketing", ConsentStatus.GRANTED, source="crm")
    await graph.set_consent("email:lima2@x.com", "marketing", ConsentStatus.DENIED, source="crm")
    assert await members(graph.store, {"all": []}, visible_to="marketing") == {LIMA1, LIMA2}


async def test_an_expired_grant_is_no_decision(graph: IdentityGraph) -> None:
    soon = utcnow() + timedelta(days=1)
    await graph.set_consent(
        "email:a@x.com", "marketing", ConsentStatus.GRANTED, expires_at=soon, source="s"
    )
    granted = {"consent": {"purpose": "marketing", "status": "GRANTED"}}
    page = await graph.store.segment_page(query(granted), first=10)
    assert page.total_count == 1
    later = await graph.store.segment_page(query(granted, now=soon), first=10)
    assert later.total_count == 0, "expired: the opt-in default (deny) applies"


async def test_merges_splits_and_erasure_show_at_once(graph: IdentityGraph) -> None:
    await graph.ingest(
        [
            event("email:a@x.com", traits={"city": "Lima"}),
            event("email:b@x.com", interaction={"type": "purchase"}),
        ]
    )
    lima_buyers = {
        "all": [{"trait": {"name": "city", "eq": "Lima"}}, {"interactions": {"type": "purchase"}}]
    }
    assert await members(graph.store, lima_buyers) == set()
    await graph.ingest([event("email:a@x.com", "email:b@x.com")])
    assert await members(graph.store, lima_buyers) == {"email:a@x.com", "email:b@x.com"}
    await graph.unlink("email:a@x.com", "email:b@x.com")
    assert await members(graph.store, lima_buyers) == set()
    await graph.forget("email:a@x.com")
    assert await members(graph.store, {"trait": {"name": "city", "exists": True}}) == set()
    assert await members(graph.store, {"all": []}) == {"email:b@x.com"}


async def test_pages_follow_the_sort_and_the_cursor(graph: IdentityGraph) -> None:
    for i in range(7):
        await graph.ingest([event(f"email:p{i}@x.com", traits={"n": i})])
    store = graph.store
    everyone = query({"trait": {"name": "n", "gte": 1}})
    for sort in SegmentSort:
        records = list(
            (
                await store.customers(
                    [await customer(graph, f"email:p{i}@x.com") for i in range(1, 7)]
                )
            ).values()
        )
        field = "created_at" if sort.by_created else "updated_at"
        expected = sorted(records, key=lambda c: (getattr(c, field), c.id), reverse=sort.descending)
        seen = []
        after = None
        while True:
            page = await store.segment_page(everyone, first=4, after=after, sort=sort)
            assert page.total_count == 6
            seen += page.customers
            if not page.has_next:
                break
            last = page.customers[-1]
            after = (getattr(last, field), last.id)
        assert [c.id for c in seen] == [c.id for c in expected]


async def test_export_iterates_every_member_in_batches(graph: IdentityGraph) -> None:
    await graph.ingest([event(f"email:e{i}@x.com", traits={"n": i}) for i in range(25)])
    batches = [
        b
        async for b in graph.store.iter_segment(
            query({"trait": {"name": "n", "lt": 20}}), batch_size=6
        )
    ]
    assert [len(b) for b in batches] == [6, 6, 6, 2]
    ids = [c.id for b in batches for c in b]
    assert ids == sorted(ids)
    assert len(set(ids)) == 20


async def test_saved_segments(store: Store) -> None:
    at = datetime(2026, 3, 1, tzinfo=UTC)
    lima = SavedSegment("lima", {"trait": {"name": "city", "eq": "Lima"}}, "People in Lima", at)
    await store.put_segment(lima)
    await store.put_segment(SavedSegment("all", {"all": []}, "", at))
    assert [s.name for s in await store.segments()] == ["all", "lima"]
    assert await store.segment("lima") == lima
    renamed = SavedSegment("lima", {"source": "crm"}, "Changed", at + timedelta(days=1))
    await store.put_segment(renamed)
    assert await store.segment("lima") == renamed
    await store.delete_segment("lima")
    assert await store.segment("lima") is None
    with pytest.raises(NotFound):
        await store.delete_segment("lima")
    assert [s.name for s in await store.segments()] == ["all"]


# ---- the property: a store's members are the brute-force evaluator's -----------------

KEYS = [f"email:{c}@x.com" for c in "abcdef"] + ["cookie:c1", "cookie:c2", "cookie:c3"]
KEYS += ["crm_id:CRM-1", "crm_id:XY-2", "device:d1", "device:d2", "account:shop:1"]
TRAIT_NAMES = ["city", "age", "joined"]
TRAIT_VALUES: list[Any] = [
    "Lima", "lima", "", 1, 1.0, 2, 2.5, -3, True, False, None, [1], {"a": 1},
    "2026-01-01T00:00:00Z", "2026-01-01T01:00:00+01:00", "2026-03-01T12:00:00.5Z",
    "2026-01-01", "2026-01-01 00:00:00Z", "not a date",
]  # fmt: skip
OPERAND_SCALARS: list[Any] = ["Lima", "lima", "", 1, 1.5, 2, -3, True, False, "2026-01-01"]
OPERAND_TIMES = ["2026-01-01T00:00:00Z", "2026-01-01T00:30:00+01:00", "2026-03-01T12:00:00.5Z"]
TIMES = ["2025-12-01T00:00:00Z", "2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z"]
SOURCES = ["web", "crm", "pos"]
TYPES = ["purchase", "login"]
CHANNELS = ["web", "app"]
PAST, FUTURE = "2026-01-15T00:00:00Z", "2099-01-01T00:00:00Z"


@st.composite
def raw_event(draw: st.DrawFn, i: int) -> dict[str, Any]:
    keys = draw(
        st.lists(
            st.sampled_from(KEYS),
            min_size=1,
            max_size=draw(st.sampled_from([1, 1, 2, 3])),
            unique=True,
        )
    )
    if sum(k.startswith("device:") for k in keys) > 1:
        keys = [k for k in keys if not k.startswith("device:")] or ["cookie:c1"]
    extra: dict[str, Any] = {}
    if draw(st.integers(0, 3)):
        names = draw(st.lists(st.sampled_from(TRAIT_NAMES), max_size=3, unique=True))
        extra["traits"] = {n: draw(st.sampled_from(TRAIT_VALUES)) for n in names}
    if draw(st.booleans()):
        interaction: dict[str, Any] = {"type": draw(st.sampled_from(TYPES))}
        if draw(st.booleans()):
            interaction["channel"] = draw(st.sampled_from(CHANNELS))
        extra["interaction"] = interaction
    if draw(st.integers(0, 3)) == 0:
        consent: dict[str, Any] = {
            "purpose": draw(st.sampled_from(["marketing", "support"])),
            "status": draw(st.sampled_from(["granted", "denied"])),
        }
        if draw(st.booleans()):
            consent["expiresAt"] = draw(st.sampled_from([PAST, FUTURE]))
        extra["consent"] = consent
    return event(
        *keys,
        event_id=f"p{i}",
        at=draw(st.sampled_from(TIMES)),
        source=draw(st.sampled_from(SOURCES)),
        **extra,
    )


def comparisons(operands: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    ops = st.sampled_from(["eq", "gt", "gte", "lt", "lte"])
    return st.dictionaries(ops, operands, min_size=1, max_size=2)


def leaves(times: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    trait_ops = st.one_of(
        st.fixed_dictionaries({"eq": st.sampled_from(OPERAND_SCALARS)}),
        st.fixed_dictionaries(
            {"in": st.lists(st.sampled_from(OPERAND_SCALARS), min_size=1, max_size=3)}
        ),
        st.fixed_dictionaries({"exists": st.booleans()}),
        st.dictionaries(
            st.sampled_from(["gt", "gte", "lt", "lte"]),
            st.sampled_from([0, 1, 1.0, 2, 2.5, -3, *OPERAND_TIMES]),
            min_size=1,
            max_size=2,
        ),
    )
    trait = st.builds(
        lambda name, ops: {"trait": {"name": name, **ops}}, st.sampled_from(TRAIT_NAMES), trait_ops
    )
    identifier = st.one_of(
        st.builds(
            lambda k: {"identifier": {"kind": k}},
            st.sampled_from(["email", "cookie", "crm_id", "device", "account", "phone"]),
        ),
        st.builds(
            lambda p: {"identifier": {"kind": "crm_id", "prefix": p}},
            st.sampled_from(["", "CRM", "crm", "XY-2", "XY-20"]),
        ),
        st.builds(
            lambda p: {"identifier": {"kind": "account", "prefix": p}},
            st.sampled_from(["shop:", "shop:1", "pos:"]),
        ),
    )
    interactions = st.fixed_dictionaries(
        {},
        optional={
            "type": st.sampled_from(TYPES),
            "channel": st.sampled_from(CHANNELS),
            "since": st.sampled_from(TIMES),
            "atLeast": st.integers(0, 3),
        },
    ).map(lambda body: {"interactions": body})
    consent = st.builds(
        lambda p, s: {"consent": {"purpose": p, "status": s}},
        st.sampled_from(["marketing", "support", "analytics"]),
        st.sampled_from(["GRANTED", "DENIED"]),
    )
    time = st.builds(
        lambda field, ops: {field: ops},
        st.sampled_from(["createdAt", "updatedAt"]),
        comparisons(st.sampled_from(times)),
    )
    return st.one_of(
        trait,
        identifier,
        interactions,
        consent,
        time,
        st.builds(lambda s: {"source": s}, st.sampled_from(SOURCES)),
        st.builds(lambda ops: {"size": ops}, comparisons(st.integers(0, 4))),
    )


def filters(times: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    return st.recursive(
        leaves(times),
        lambda inner: st.one_of(
            inner,
            st.builds(lambda parts: {"all": parts}, st.lists(inner, max_size=3)),
            st.builds(lambda parts: {"any": parts}, st.lists(inner, max_size=3)),
            st.builds(lambda part: {"not": part}, inner),
        ),
        max_leaves=6,
    )


async def summaries(store: Store, now: datetime) -> list[CustomerSummary]:
    """Every customer's summary, from the store's ordinary reads."""
    customers = [c async for page in store.iter_customers() for c in page]
    ids = [c.id for c in customers]
    nodes, traits = await store.nodes_of(ids), await store.traits_of(ids)
    consents = await store.consents_of(ids)
    interactions = await store.interactions_of(ids, limit=10_000)
    links = await store.links_of([n.key for ns in nodes.values() for n in ns])
    return [
        summarize(
            c,
            nodes[c.id],
            traits[c.id],
            interactions[c.id],
            consents[c.id],
            links,
            PURPOSES,
            now,
        )
        for c in customers
    ]


FILTERS_PER_GRAPH = 25
operations = st.lists(
    st.one_of(
        st.tuples(st.just("ingest"), st.integers(1, 4)),
        st.tuples(st.just("ingest"), st.integers(1, 4)),
        st.tuples(st.just("unlink"), st.sampled_from(KEYS), st.sampled_from(KEYS)),
        st.tuples(st.just("forget"), st.sampled_from(KEYS)),
    ),
    min_size=1,
    max_size=10,
)


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("neo4j", marks=pytest.mark.neo4j)])
@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=operations, data=st.data())
def test_members_are_those_the_evaluator_finds(
    backend: str, ops: list[tuple[Any, ...]], data: st.DataObject
) -> None:
    async def body(graph: IdentityGraph) -> None:
        store, seq = graph.store, 0
        for op in ops:
            if op[0] == "ingest":
                batch = [data.draw(raw_event(seq + j)) for j in range(op[1])]
                seq += op[1]
                await graph.ingest(batch)
            elif op[0] == "unlink":
                known = await store.customer_ids_of([op[1], op[2]])
                if op[1] != op[2] and len(known) == 2 and len(set(known.values())) == 1:
                    await graph.unlink(op[1], op[2])
            elif await store.customer_ids_of([op[1]]):
                await graph.forget(op[1])
        now = utcnow()
        everyone = await summaries(store, now)
        times = sorted({t.isoformat() for s in everyone for t in (s.created_at, s.updated_at)})
        for _ in range(FILTERS_PER_GRAPH):
            raw = data.draw(filters(times or TIMES), label="filter")
            purpose = data.draw(st.sampled_from([None, MARKETING, SUPPORT]), label="purpose")
            parsed = parse_filter(raw, NAMES)
            expected = {
                s.id
                for s in everyone
                if matches(parsed, s)
                and (purpose is None or visible(s.consent[purpose.name], s.keys))
            }
            segment = SegmentQuery(parsed, PURPOSES, now, purpose)
            page = await store.segment_page(segment, first=100)
            assert {c.id for c in page.customers} == expected
            assert page.total_count == len(expected) == await store.count_segment(segment)
            exported = [c.id async for batch in store.iter_segment(segment, 2) for c in batch]
            assert sorted(exported) == exported
            assert set(exported) == expected

    run_on_graph(backend, Rules(limits={}, default_limit=50, max_size=1000), body)
