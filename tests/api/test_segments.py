"""``customers(filter:, segment:)``, ``segments`` and saved segments over HTTP."""

from __future__ import annotations

from typing import Any

from idgraph.config import Settings
from idgraph.domain.model import ConsentStatus
from idgraph.service import IdentityGraph
from tests.api.conftest import Api, codes, new_key
from tests.events import event

CUSTOMERS = """
query($filter: CustomerFilter, $segment: String, $first: Int, $after: String,
      $sort: CustomerSort! = UPDATED_AT_DESC) {
  customers(filter: $filter, segment: $segment, first: $first, after: $after, sort: $sort) {
    totalCount
    edges {
      cursor
      node {
        id
        identifiers { edges { node { kind value } } }
        traits { edges { node { name value } } }
      }
    }
    pageInfo { hasNextPage hasPreviousPage endCursor }
  }
}
"""
LIMA = {"trait": {"name": "city", "eq": "Lima"}}


async def seed(graph: IdentityGraph) -> None:
    await graph.ingest(
        [
            event(
                f"email:p{i}@x.com", f"cookie:c{i}", traits={"city": "Lima" if i % 2 else "Cusco"}
            )
            for i in range(7)
        ]
    )


def flat(node: dict[str, Any]) -> dict[str, Any]:
    """A listed customer with its identifier and trait pages as plain lists."""
    pages = ("identifiers", "traits")
    return {k: [e["node"] for e in v["edges"]] if k in pages else v for k, v in node.items()}


def emails(node: dict[str, Any]) -> list[str]:
    return [i["value"] for i in node["identifiers"] if i["kind"] == "email"]


async def listing(api: Api, **variables: Any) -> list[dict[str, Any]]:
    """Every page of a listing (3 per page); each page must report the same total."""
    nodes: list[dict[str, Any]] = []
    after, totals = None, set()
    while True:
        page = (await api.data(CUSTOMERS, {**variables, "first": 3, "after": after}))["customers"]
        totals.add(page["totalCount"])
        nodes += [flat(e["node"]) for e in page["edges"]]
        assert page["pageInfo"]["hasPreviousPage"] is (after is not None)
        if not page["pageInfo"]["hasNextPage"]:
            assert totals == {len(nodes)}
            return nodes
        after = page["pageInfo"]["endCursor"]


async def test_pages_of_a_filter_hold_each_member_once(api: Api, graph: IdentityGraph) -> None:
    await seed(graph)
    nodes = await listing(api, filter=LIMA)
    assert sorted(email for n in nodes for email in emails(n)) == [
        "p1@x.com",
        "p3@x.com",
        "p5@x.com",
    ]
    assert all(n["traits"] == [{"name": "city", "value": "Lima"}] for n in nodes)
    oldest_first = await listing(api, filter={"all": []}, sort="CREATED_AT_ASC")
    newest_first = await listing(api, filter={"all": []}, sort="CREATED_AT_DESC")
    assert [n["id"] for n in oldest_first] == [n["id"] for n in reversed(newest_first)]


async def test_a_bad_filter_is_refused_naming_where(api: Api) -> None:
    bad = {"all": [LIMA, {"interactions": {"atLeast": -1}}]}
    result = await api.query(CUSTOMERS, {"filter": bad})
    assert codes(result) == ["BAD_USER_INPUT"]
    assert result["errors"][0]["message"] == (
        "filter.all[1].interactions.atLeast: expected a non-negative integer"
    )
    unknown = await api.query(
        CUSTOMERS, {"filter": {"consent": {"purpose": "spam", "status": "GRANTED"}}}
    )
    assert unknown["errors"][0]["message"].startswith("filter.consent.purpose: unknown purpose")
    neither = await api.query(CUSTOMERS, {})
    assert codes(neither) == ["BAD_USER_INPUT"]


async def test_a_filter_can_be_written_inline(api: Api, graph: IdentityGraph) -> None:
    await seed(graph)
    query = '{ customers(filter: {trait: {name: "city", in: ["Lima"]}}) { totalCount } }'
    assert (await api.data(query))["customers"]["totalCount"] == 3


async def test_a_cursor_works_only_for_its_own_listing(api: Api, graph: IdentityGraph) -> None:
    await seed(graph)
    page = (await api.data(CUSTOMERS, {"filter": {"all": []}, "first": 2}))["customers"]
    cursor = page["pageInfo"]["endCursor"]
    assert "Lima" not in cursor
    other = await api.query(CUSTOMERS, {"filter": LIMA, "first": 2, "after": cursor})
    assert codes(other) == ["BAD_USER_INPUT"]
    resorted = await api.query(
        CUSTOMERS, {"filter": {"all": []}, "after": cursor, "sort": "CREATED_AT_ASC"}
    )
    assert codes(resorted) == ["BAD_USER_INPUT"]


async def test_a_purpose_neither_lists_nor_counts_whom_it_may_not_see(
    api: Api, graph: IdentityGraph, settings: Settings
) -> None:
    await seed(graph)
    await graph.set_consent("cookie:c1", "marketing", ConsentStatus.GRANTED, source="crm")
    await graph.set_consent("email:p1@x.com", "marketing", ConsentStatus.DENIED, source="crm")
    reader = api.as_(await new_key(graph.store, settings, "reader", "reader"), "marketing")
    page = (await reader.data(CUSTOMERS, {"filter": LIMA}))["customers"]
    assert page["totalCount"] == 1
    [node] = [flat(e["node"]) for e in page["edges"]]
    assert node["identifiers"] == [{"kind": "cookie", "value": "c1"}], "as resolve shows it"
    assert node["traits"] == [], "the customer-level decision (denied) hides traits"


async def test_readers_may_list_resolvers_may_not(
    api: Api, graph: IdentityGraph, settings: Settings
) -> None:
    resolver = api.as_(await new_key(graph.store, settings, "resolver", "resolver"))
    result = await resolver.query(CUSTOMERS, {"filter": LIMA})
    assert codes(result) == ["FORBIDDEN"]


async def test_listings_are_audited(api: Api, graph: IdentityGraph) -> None:
    await seed(graph)
    page = (await api.data(CUSTOMERS, {"filter": LIMA}))["customers"]
    log = await api.data("{ auditLog(first: 100) { edges { node { operation } } } }")
    operations = {e["node"]["operation"] for e in log["auditLog"]["edges"]}
    assert "CUSTOMERS" in operations
    entries = await graph.store.audit_log(customer_id=None, limit=100)
    listed = {e.customer_id for e in entries if e.operation == "customers"}
    assert listed == {e["node"]["id"] for e in page["edges"]}


SAVE = """
mutation($name: String!, $filter: CustomerFilter!, $description: String! = "") {
  saveSegment(name: $name, filter: $filter, description: $description) {
    segment { name description filter memberCount }
    userErrors { code field message }
  }
}
"""
SEGMENTS = "{ segments { name filter memberCount } }"
DELETE = (
    "mutation($name: String!) { deleteSegment(name: $name) { name userErrors { code field } } }"
)


async def test_saved_segments(api: Api, graph: IdentityGraph) -> None:
    await seed(graph)
    saved = (await api.data(SAVE, {"name": "lima", "filter": LIMA, "description": "In Lima"}))[
        "saveSegment"
    ]
    assert saved == {
        "segment": {"name": "lima", "description": "In Lima", "filter": LIMA, "memberCount": 3},
        "userErrors": [],
    }
    assert (await api.data(SEGMENTS))["segments"] == [
        {"name": "lima", "filter": LIMA, "memberCount": 3}
    ]
    both = await listing(
        api, segment="lima", filter={"identifier": {"kind": "cookie", "prefix": "c1"}}
    )
    assert len(both) == 1
    assert len(await listing(api, segment="lima")) == 3
    await graph.ingest([event("email:p0@x.com", traits={"city": "Lima"})])
    assert (await api.data(SEGMENTS))["segments"][0]["memberCount"] == 4, "counts are live"
    deleted = (await api.data(DELETE, {"name": "lima"}))["deleteSegment"]
    assert deleted == {"name": "lima", "userErrors": []}
    again = (await api.data(DELETE, {"name": "lima"}))["deleteSegment"]
    assert again == {"name": None, "userErrors": [{"code": "NOT_FOUND", "field": "name"}]}
    missing = await api.query(CUSTOMERS, {"segment": "lima"})
    assert codes(missing) == ["NOT_FOUND"]


async def test_a_segment_is_saved_only_when_valid(api: Api) -> None:
    bad_filter = await api.data(SAVE, {"name": "x", "filter": {"size": {"gte": -1}}})
    assert bad_filter["saveSegment"]["userErrors"] == [
        {
            "code": "BAD_USER_INPUT",
            "field": "filter",
            "message": "filter.size.gte: expected a non-negative integer",
        }
    ]
    bad_name = (await api.data(SAVE, {"name": "no spaces", "filter": LIMA}))["saveSegment"]
    assert [e["field"] for e in bad_name["userErrors"]] == ["name"]
    assert (await api.data(SEGMENTS))["segments"] == []
