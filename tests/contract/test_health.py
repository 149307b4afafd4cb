"""The health report's aggregates (``Store.health``) on a small known graph, on every
backend."""

from __future__ import annotations

from datetime import UTC, date, datetime

from idgraph.domain.health import ConsentCoverage, SuperNode
from idgraph.service import IdentityGraph
from tests.events import event

NOW = datetime(2026, 3, 20, tzinfo=UTC)
DAY1, DAY2, DAY3 = "2026-03-01T12:00:00Z", "2026-03-02T12:00:00Z", "2026-03-03T12:00:00Z"


async def test_an_empty_store_has_nothing_to_plot(graph: IdentityGraph) -> None:
    stats = await graph.store.health(NOW)

    assert stats.at == NOW
    assert stats.counts == await graph.store.counts()
    assert stats.customer_sizes == stats.new_customers == stats.merges == stats.events == {}
    assert stats.refused_links == stats.interactions == stats.consent == {}
    assert stats.super_nodes == ()


async def test_the_aggregates_of_a_known_graph(graph: IdentityGraph) -> None:
    await graph.ingest(
        [
            event(
                "email:a@x.com",
                "cookie:c1",
                at=DAY1,
                interaction={"type": "page_view"},
                consent={"purpose": "marketing", "status": "granted"},
            ),
            event("email:b@x.com", "cookie:c2", at=DAY1, interaction={"type": "page_view"}),
            event(
                "email:c@x.com",
                at=DAY1,
                interaction={"type": "purchase"},
                consent={"purpose": "marketing", "status": "denied"},
            ),
            event(
                "email:d@x.com",
                at=DAY1,
                consent={
                    "purpose": "analytics",
                    "status": "granted",
                    "expiresAt": "2026-03-10T00:00:00Z",
                },
            ),
        ]
    )
    await graph.ingest([event("cookie:c1", "cookie:c2", at=DAY2)])  # a merge
    # A customer holds one user_id: the second link is refused.
    await graph.ingest([event("user_id:1", "cookie:c1", at=DAY3)])
    await graph.ingest([event("user_id:2", "cookie:c1", at=DAY3)])

    stats = await graph.store.health(NOW)

    assert stats.counts == await graph.store.counts()
    assert stats.customer_sizes == {1: 3, 5: 1}  # c, d, user_id:2 alone; a+b+cookies+user_id:1
    assert sum(stats.new_customers.values()) == 4  # live ones, by when idgraph made them
    assert sum(stats.merges.values()) == 1
    assert sum(stats.events.values()) == stats.counts["events"] == 7
    assert stats.refused_links == {"limit:user_id": {date(2026, 3, 3): 1}}
    assert stats.interactions == {"page_view": 2, "purchase": 1}
    assert stats.consent == {
        "analytics": ConsentCoverage(expired=1),
        "marketing": ConsentCoverage(granted=1, denied=1),
    }
    assert stats.super_nodes[0] == SuperNode("cookie:c1", "cookie", links=4, refused=1)
    assert stats.super_nodes[1] == SuperNode("cookie:c2", "cookie", links=2, refused=0)
    assert {n.links for n in stats.super_nodes[2:]} == {1}
    assert len(stats.super_nodes) == 6  # every linked node, at most SUPER_NODES


async def test_a_grant_in_force_is_granted(graph: IdentityGraph) -> None:
    expiry = {"purpose": "analytics", "status": "granted", "expiresAt": "2026-03-10T00:00:00Z"}
    await graph.ingest([event("email:d@x.com", at=DAY1, consent=expiry)])

    stats = await graph.store.health(datetime(2026, 3, 5, tzinfo=UTC))

    assert stats.consent == {"analytics": ConsentCoverage(granted=1)}
