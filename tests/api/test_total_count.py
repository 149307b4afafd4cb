"""``totalCount`` on every connection: the number of items all its pages hold, under
the same filters as the pages."""

from __future__ import annotations

from typing import Any

from idgraph.service import IdentityGraph
from tests.api.conftest import Api
from tests.events import event

INTERACTIONS = """
query($type: [String!], $since: DateTime, $after: String) {
  resolve(identifier: {kind: "email", value: "a@x.com"}) {
    interactions(first: 2, type: $type, since: $since, after: $after) {
      totalCount
      edges { node { type at } }
      pageInfo { hasNextPage endCursor }
    }
  }
}
"""


async def _all_pages(api: Api, **filters: Any) -> tuple[set[int], list[dict[str, Any]]]:
    """Every page's ``totalCount`` and the items of all pages."""
    totals: set[int] = set()
    items: list[dict[str, Any]] = []
    after = None
    while True:
        page = (await api.data(INTERACTIONS, {**filters, "after": after}))["resolve"][
            "interactions"
        ]
        totals.add(page["totalCount"])
        items += [e["node"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            return totals, items
        after = page["pageInfo"]["endCursor"]


async def test_interactions_total_count_counts_what_the_filters_select(
    api: Api, graph: IdentityGraph
) -> None:
    await graph.ingest(
        [
            event(
                "email:a@x.com",
                at=f"2026-03-0{n}T12:00:00Z",
                interaction={"type": "page_view" if n <= 5 else "purchase"},
            )
            for n in range(1, 10)
        ]
    )
    totals, items = await _all_pages(api)
    assert (totals, len(items)) == ({9}, 9)
    totals, items = await _all_pages(api, type=["page_view"])
    assert (totals, [i["type"] for i in items]) == ({5}, ["page_view"] * 5)
    totals, items = await _all_pages(api, since="2026-03-05T00:00:00Z")
    assert (totals, len(items)) == ({5}, 5)
    totals, items = await _all_pages(api, type=["purchase"], since="2026-03-08T00:00:00Z")
    assert (totals, len(items)) == ({2}, 2)
    totals, items = await _all_pages(api, type=["refund"])
    assert (totals, items) == ({0}, [])


CONFLICTS = """
query($after: String) {
  conflicts(first: 2, after: $after) { totalCount edges { cursor } pageInfo { endCursor } }
}
"""


async def test_conflicts_count_every_refused_link(api: Api, graph: IdentityGraph) -> None:
    assert (await api.data(CONFLICTS))["conflicts"]["totalCount"] == 0
    for n in range(3):
        await graph.ingest([event(f"user_id:a{n}", f"email:{n}@x.com")])
        await graph.ingest([event(f"user_id:b{n}", f"email:{n}@x.com")])
    first = (await api.data(CONFLICTS))["conflicts"]
    rest = (await api.data(CONFLICTS, {"after": first["pageInfo"]["endCursor"]}))["conflicts"]
    assert first["totalCount"] == rest["totalCount"] == 3
    assert len(first["edges"]) + len(rest["edges"]) == 3


AUDIT = """
query($customerId: ID) {
  auditLog(first: 1, customerId: $customerId) { totalCount edges { node { customerId } } }
}
"""

RESOLVE = """
query($value: String!) { resolve(identifier: {kind: "email", value: $value}) { id } }
"""


async def test_audit_log_counts_its_records_for_the_customer_asked_for(
    api: Api, graph: IdentityGraph
) -> None:
    await graph.ingest([event("email:a@x.com"), event("email:b@x.com")])
    a = (await api.data(RESOLVE, {"value": "a@x.com"}))["resolve"]["id"]
    await api.data(RESOLVE, {"value": "a@x.com"})
    await api.data(RESOLVE, {"value": "b@x.com"})
    await api.data(RESOLVE, {"value": "nobody@x.com"})
    assert (await api.data(AUDIT, {"customerId": a}))["auditLog"]["totalCount"] == 2
    everything = (await api.data(AUDIT))["auditLog"]
    assert everything["totalCount"] == 4  # a miss is recorded too
    assert len(everything["edges"]) == 1
