"""The store contract, exercised through the service: every backend must pass."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from idgraph.domain.model import Outcome
from idgraph.errors import NotFound
from idgraph.service import IdentityGraph
from tests.events import event


async def customer(graph: IdentityGraph, key: str) -> str:
    customer_id = await graph.customer_of(key)
    assert customer_id is not None, key
    return customer_id


async def assert_clean(graph: IdentityGraph) -> None:
    assert await graph.check() == []


async def test_one_event_links_all_its_identity_nodes(graph: IdentityGraph) -> None:
    result = await graph.ingest(
        [event("email:Alice@Example.com ", "cookie:c1", "device:d1", "account:shop:42")]
    )
    assert result.count(Outcome.ACCEPTED) == 1
    ids = {
        await customer(graph, k)
        for k in ["email:alice@example.com", "cookie:c1", "device:d1", "account:shop:42"]
    }
    assert len(ids) == 1
    profile = await graph.resolve("email:ALICE@example.com")
    assert profile is not None
    assert [n.key for n in profile.nodes] == [
        "account:shop:42",
        "cookie:c1",
        "device:d1",
        "email:alice@example.com",
    ]
    await assert_clean(graph)


async def test_events_sharing_an_identifier_merge_and_old_id_survives(graph: IdentityGraph) -> None:
    await graph.ingest([event("email:a@x.com", "cookie:c1")])
    older = await customer(graph, "email:a@x.com")
    await graph.ingest([event("phone:+16502530000", "cookie:c2")])
    younger = await customer(graph, "cookie:c2")
    assert older != younger
    result = await graph.ingest([event("email:a@x.com", "cookie:c2")])
    assert result.merges == 1
    assert await customer(graph, "phone:+16502530000") == older
    record = (await graph.store.customers([younger]))[younger]
    assert record.id == older, "an absorbed id resolves to its survivor"
    assert younger in record.aliases
    assert record.size == 4
    await assert_clean(graph)


async def test_alias_of_an_alias_follows_to_the_live_customer(graph: IdentityGraph) -> None:
    await graph.ingest([event("email:a@x.com")])
    first = await customer(graph, "email:a@x.com")
    await graph.ingest([event("email:b@x.com")])
    second = await customer(graph, "email:b@x.com")
    await graph.ingest([event("email:c@x.com")])
    third = await customer(graph, "email:c@x.com")
    await graph.ingest([event("email:b@x.com", "email:c@x.com")])
    await graph.ingest([event("email:a@x.com", "email:b@x.com")])
    found = await graph.store.customers([second, third])
    assert {c.id for c in found.values()} == {first}
    assert set(found[third].aliases) == {second, third}
    await assert_clean(graph)


async def test_same_event_id_twice_changes_nothing(graph: IdentityGraph) -> None:
    raw = event("email:a@x.com", "cookie:c1", traits={"name": "A"})
    first = await graph.ingest([raw])
    counts = await graph.store.counts()
    again = await graph.ingest([raw, raw])
    assert first.count(Outcome.ACCEPTED) == 1
    assert [o.outcome for o in again.outcomes] == [Outcome.DUPLICATE, Outcome.DUPLICATE]
    assert await graph.store.counts() == counts


async def test_invalid_event_is_rejected_whole_and_the_batch_goes_on(graph: IdentityGraph) -> None:
    result = await graph.ingest(
        [
            event("email:good@x.com", "cookie:c1"),
            event("email:not-an-email", "cookie:c2", event_id="bad"),
            event("cookie:c3"),
        ]
    )
    assert [o.outcome for o in result.outcomes] == [
        Outcome.ACCEPTED,
        Outcome.REJECTED,
        Outcome.ACCEPTED,
    ]
    assert "identifiers[0].value: invalid email" in (result.outcomes[1].reason or "")
    assert await graph.customer_of("cookie:c2") is None, "nothing of a rejected event is stored"


async def test_shared_tablet_keeps_two_people_apart(graph: IdentityGraph) -> None:
    await graph.ingest([event("user_id:ann", "cookie:ann-phone")])
    await graph.ingest([event("user_id:bob", "cookie:bob-laptop")])
    result = await graph.ingest(
        [
            event("user_id:ann", "device:tablet", "cookie:t-ann"),
            event("user_id:bob", "device:tablet", "cookie:t-bob"),
        ]
    )
    assert result.rejected_links == 1
    ann, bob = await customer(graph, "user_id:ann"), await customer(graph, "user_id:bob")
    assert ann != bob
    assert await customer(graph, "device:tablet") == ann, "first login keeps the tablet"
    assert await customer(graph, "cookie:t-bob") == bob, "each keeps the cookie they used"
    links = await graph.store.links_of(["user_id:bob"])
    refused = [k for k in links if not k.accepted]
    assert [(k.a, k.b, k.rule) for k in refused] == [
        ("device:tablet", "user_id:bob", "limit:user_id")
    ]
    conflicts = await graph.store.rejected_links(limit=10)
    assert [k.rule for k in conflicts] == ["limit:user_id"]
    await assert_clean(graph)


async def test_max_size_refuses_a_merge(store, settings) -> None:  # type: ignore[no-untyped-def]
    import dataclasses

    rules = dataclasses.replace(settings.rules, max_size=3)
    graph = IdentityGraph(store, dataclasses.replace(settings, rules=rules))
    await graph.ingest([event("email:a@x.com", "cookie:1", "cookie:2")])
    result = await graph.ingest([event("email:a@x.com", "cookie:3")])
    assert result.rejected_links == 1
    assert await customer(graph, "cookie:3") != await customer(graph, "email:a@x.com")
    assert [k.rule for k in await graph.store.rejected_links(limit=5)] == ["max_size"]
    await assert_clean(graph)


async def test_blocked_values_never_become_nodes(graph: IdentityGraph) -> None:
    result = await graph.ingest(
        [
            event(
                "email:a@x.com",
                "email:unknown",
                "phone:N/A",
                "device:00000000-0000-0000",
                "cookie:null",
                "user_id:-1",
                "crm_id:---",
            )
        ]
    )
    assert result.count(Outcome.ACCEPTED) == 1
    assert (await graph.store.counts())["nodes"] == 1
    only_blocked = await graph.ingest([event("email:undefined")])
    assert only_blocked.outcomes[0].outcome is Outcome.REJECTED


async def test_unlink_splits_and_ban_prevents_remerge(graph: IdentityGraph) -> None:
    await graph.ingest([event("email:a@x.com", "cookie:c1"), event("cookie:c1", "device:d1")])
    original = await customer(graph, "email:a@x.com")
    plan = await graph.unlink("email:a@x.com", "cookie:c1", ban=True)
    assert plan.rejected_links == [("cookie:c1", "email:a@x.com", "unlink")]
    assert await customer(graph, "email:a@x.com") != await customer(graph, "device:d1")
    part = await customer(graph, "device:d1")
    record = (await graph.store.customers([part]))[part]
    kept = await customer(graph, "cookie:c1")
    assert original in (kept, await customer(graph, "email:a@x.com"))
    assert (record.split_from == original) != (part == original)
    result = await graph.ingest(
        [event("email:a@x.com", "phone:+16502530000"), event("phone:+16502530000", "device:d1")]
    )
    assert result.rejected_links == 1
    assert await customer(graph, "email:a@x.com") != await customer(graph, "cookie:c1")
    await assert_clean(graph)


async def test_unlink_without_ban_lets_new_evidence_merge_again(graph: IdentityGraph) -> None:
    await graph.ingest([event("email:a@x.com", "cookie:c1")])
    await graph.unlink("email:a@x.com", "cookie:c1")
    assert await customer(graph, "email:a@x.com") != await customer(graph, "cookie:c1")
    await graph.ingest([event("email:a@x.com", "cookie:c1")])
    assert await customer(graph, "email:a@x.com") == await customer(graph, "cookie:c1")
    await assert_clean(graph)


async def test_unlink_cuts_every_path_between_the_two(graph: IdentityGraph) -> None:
    await graph.ingest(
        [
            event("email:a@x.com", "cookie:c1"),
            event("email:a@x.com", "cookie:c2"),
            event("cookie:c1", "device:d1"),
            event("cookie:c2", "device:d1"),
        ]
    )
    plan = await graph.unlink("email:a@x.com", "device:d1")
    assert len(plan.rejected_links) == 2
    assert await customer(graph, "email:a@x.com") != await customer(graph, "device:d1")
    await assert_clean(graph)


async def test_unlink_unknown_identifier_is_not_found(graph: IdentityGraph) -> None:
    await graph.ingest([event("email:a@x.com")])
    with pytest.raises(NotFound):
        await graph.unlink("email:a@x.com", "cookie:nope")


async def test_traits_merge_latest_wins_with_provenance(graph: IdentityGraph) -> None:
    await graph.ingest(
        [
            event(
                "email:a@x.com",
                "cookie:c1",
                at="2026-03-02T00:00:00Z",
                source="crm",
                traits={"city": "Oslo", "tier": "gold"},
            ),
            event("cookie:c1", at="2026-03-01T00:00:00Z", source="web", traits={"city": "Lima"}),
            event("cookie:c1", at="2026-03-03T00:00:00Z", source="app", traits={"name": "Ann"}),
        ]
    )
    profile = await graph.resolve("cookie:c1")
    assert profile is not None
    assert {k: t.value for k, t in profile.traits.items()} == {
        "city": "Oslo",
        "tier": "gold",
        "name": "Ann",
    }
    assert profile.traits["city"].source == "crm"
    assert profile.traits["city"].key == "email:a@x.com"


async def test_interactions_follow_merges_newest_first(graph: IdentityGraph) -> None:
    for day in range(1, 6):
        await graph.ingest(
            [
                event(
                    f"cookie:c{day % 2}",
                    at=f"2026-03-0{day}T00:00:00Z",
                    interaction={"type": "page_view", "channel": "web"},
                )
            ]
        )
    await graph.ingest(
        [event("cookie:c0", "cookie:c1", interaction={"type": "login"}, at="2026-02-01T00:00:00Z")]
    )
    cid = await customer(graph, "cookie:c0")
    store = graph.store
    page = (await store.interactions_of([cid], limit=3))[cid]
    assert [i.at.day for i in page] == [5, 4, 3]
    rest = (await store.interactions_of([cid], limit=10, before=(page[-1].at, page[-1].id)))[cid]
    assert [(i.at.month, i.at.day) for i in rest] == [(3, 2), (3, 1), (2, 1)]
    assert rest[-1].keys == ("cookie:c0",), "the event's subject: first of equal priority"
    logins = (await store.interactions_of([cid], limit=10, types=["login"]))[cid]
    assert len(logins) == 1
    since = await store.interactions_of([cid], limit=10, since=datetime(2026, 3, 4, tzinfo=UTC))
    assert len(since[cid]) == 2
    assert await store.count_interactions([cid]) == {cid: 6}


async def test_interactions_of_many_customers_in_one_call(graph: IdentityGraph) -> None:
    await graph.ingest(
        [
            event("cookie:a", at=f"2026-03-0{day}T00:00:00Z", interaction={"type": "view"})
            for day in range(1, 5)
        ]
        + [event("cookie:b", interaction={"type": "view"}), event("cookie:c")]
    )
    ids = [await customer(graph, k) for k in ("cookie:a", "cookie:b", "cookie:c")]
    found = await graph.store.interactions_of([*ids, "cus_unknown"], limit=2)
    assert [len(found[cid]) for cid in [*ids, "cus_unknown"]] == [2, 1, 0, 0]
    assert [i.at.day for i in found[ids[0]]] == [4, 3]
    counts = await graph.store.count_interactions(ids)
    assert counts == {ids[0]: 4, ids[1]: 1, ids[2]: 0}


async def test_consent_is_kept_as_history(graph: IdentityGraph) -> None:
    await graph.ingest(
        [
            event(
                "email:a@x.com",
                at="2026-03-01T00:00:00Z",
                consent={"purpose": "marketing", "status": "granted"},
            ),
            event(
                "email:a@x.com",
                at="2026-03-02T00:00:00Z",
                consent={
                    "purpose": "marketing",
                    "status": "denied",
                    "expiresAt": "2027-01-01T00:00:00Z",
                },
            ),
        ]
    )
    cid = await customer(graph, "email:a@x.com")
    history = (await graph.store.consents_of([cid]))[cid]
    assert [c.status.value for c in history] == ["granted", "denied"]
    assert history[1].expires_at == datetime(2027, 1, 1, tzinfo=UTC)


async def test_merge_into_a_big_customer(graph: IdentityGraph) -> None:
    big = [event("email:big@x.com", *[f"cookie:b{i}" for i in range(40)])]
    await graph.ingest(big)
    await graph.ingest([event("phone:+16502530000", "cookie:s1")])
    small = await customer(graph, "cookie:s1")
    large = await customer(graph, "email:big@x.com")
    await graph.ingest([event("email:big@x.com", "phone:+16502530000")])
    assert await customer(graph, "cookie:s1") == large
    assert small in (await graph.store.customers([large]))[large].aliases
    await assert_clean(graph)


async def test_older_smaller_customer_keeps_its_id_when_merged_into_a_bigger_one(
    graph: IdentityGraph,
) -> None:
    await graph.ingest([event("email:old@x.com")])
    old = await customer(graph, "email:old@x.com")
    await graph.ingest([event("phone:+16502530000", *[f"cookie:b{i}" for i in range(30)])])
    await graph.ingest([event("email:old@x.com", "phone:+16502530000")])
    assert await customer(graph, "cookie:b7") == old
    record = (await graph.store.customers([old]))[old]
    assert record.size == 32
    await assert_clean(graph)


async def test_a_chain_of_merges_in_one_batch_ends_in_the_oldest_customer(
    graph: IdentityGraph,
) -> None:
    """B absorbs C (which had absorbed D), then the older A absorbs the bigger B, in one
    batch: every node, alias and the oldest creation time end with A."""
    await graph.ingest([event("email:a@x.com")])
    a = await customer(graph, "email:a@x.com")
    await graph.ingest([event("phone:+16502530000", *[f"cookie:b{i}" for i in range(30)])])
    b = await customer(graph, "phone:+16502530000")
    await graph.ingest([event("email:c@x.com")])
    c = await customer(graph, "email:c@x.com")
    await graph.ingest([event("email:d@x.com")])
    d = await customer(graph, "email:d@x.com")
    await graph.ingest([event("email:c@x.com", "email:d@x.com")])
    created = (await graph.store.customers([a]))[a].created_at
    result = await graph.ingest(
        [
            event("email:c@x.com", "phone:+16502530000"),
            event("email:a@x.com", "phone:+16502530000"),
        ]
    )
    assert result.merges == 2
    for key in ("email:a@x.com", "cookie:b7", "email:c@x.com", "email:d@x.com"):
        assert await customer(graph, key) == a
    found = await graph.store.customers([a, b, c, d])
    assert {r.id for r in found.values()} == {a}
    record = found[a]
    assert (record.size, record.created_at) == (34, created)
    assert set(record.aliases) == {b, c, d}
    await assert_clean(graph)
