"""Queries: resolve, customer, node, a customer's fields, explainLink, conflicts."""

from __future__ import annotations

from typing import Any

from idgraph.service import IdentityGraph
from tests.api.conftest import Api, nodes
from tests.api.opaque import tokens
from tests.events import event

PROFILE = """
query($id: IdentifierInput!) {
  resolve(identifier: $id) {
    id aliases size createdAt updatedAt splitFrom
    identifiers { totalCount edges { node { id kind value } } }
    emails: identifiers(kind: "email") { totalCount edges { node { value } } }
    devices { edges { node { id value os model customer { id } } } }
    accounts { edges { node { id system accountId } } }
    traits { edges { node { name value source updatedAt identityNode eventId } } }
    consents { purpose status decidedAt expiresAt source identityNode eventId }
  }
}
"""


def ident(kind: str, value: str) -> dict[str, str]:
    return {"kind": kind, "value": value}


async def seed_alice(graph: IdentityGraph) -> None:
    await graph.ingest(
        [
            event(
                "email:Alice@Example.com",
                "cookie:c1",
                at="2026-03-01T10:00:00Z",
                event_id="e1",
                traits={"name": "Alice", "city": "Oslo"},
                consent={"purpose": "marketing", "status": "granted"},
            ),
            event(
                "email:alice@example.com",
                "account:shop:42",
                at="2026-03-02T10:00:00Z",
                event_id="e2",
                source="app",
                device={"id": "d1", "os": "ios", "model": "iPhone 15"},
                traits={"city": "Lisbon", "vip": True},
                consent={"purpose": "marketing", "status": "denied"},
            ),
            event(
                "cookie:c1",
                at="2026-03-03T10:00:00Z",
                event_id="e3",
                consent={
                    "purpose": "analytics",
                    "status": "granted",
                    "expiresAt": "2026-03-04T00:00:00Z",
                },
            ),
            event(
                "cookie:c1",
                at="2026-03-03T11:00:00Z",
                event_id="e4",
                consent={
                    "purpose": "support",
                    "status": "granted",
                    "expiresAt": "2999-01-01T00:00:00Z",
                },
            ),
        ]
    )


async def test_resolve_by_any_identifier_normalized_like_ingest(
    api: Api, graph: IdentityGraph
) -> None:
    await seed_alice(graph)
    by_email = await api.data(PROFILE, {"id": ident("email", "  ALICE@example.com ")})
    by_device = await api.data(PROFILE, {"id": ident("device", "d1")})
    by_account = await api.data(PROFILE, {"id": ident("account", "shop:42")})
    customer = by_email["resolve"]
    assert customer == by_device["resolve"] == by_account["resolve"]
    assert customer["id"].startswith("cus_")
    assert customer["size"] == 4
    assert [(i["id"], i["kind"], i["value"]) for i in nodes(customer["identifiers"])] == [
        (tokens.node_id("cookie:c1"), "cookie", "c1"),
        (tokens.node_id("email:alice@example.com"), "email", "alice@example.com"),
    ]
    assert customer["identifiers"]["totalCount"] == 2
    assert nodes(customer["emails"]) == [{"value": "alice@example.com"}]
    assert customer["emails"]["totalCount"] == 1
    assert nodes(customer["devices"]) == [
        {
            "id": tokens.node_id("device:d1"),
            "value": "d1",
            "os": "ios",
            "model": "iPhone 15",
            "customer": {"id": customer["id"]},
        }
    ]
    assert nodes(customer["accounts"]) == [
        {"id": tokens.node_id("account:shop:42"), "system": "shop", "accountId": "42"}
    ]


async def test_unknown_identifier_resolves_to_null(api: Api, graph: IdentityGraph) -> None:
    await seed_alice(graph)
    assert (await api.data(PROFILE, {"id": ident("email", "bob@example.com")})) == {"resolve": None}


async def test_traits_are_merged_latest_wins_with_provenance(
    api: Api, graph: IdentityGraph
) -> None:
    await seed_alice(graph)
    traits = nodes((await api.data(PROFILE, {"id": ident("cookie", "c1")}))["resolve"]["traits"])
    merged = {t["name"]: t["value"] for t in traits}
    assert merged == {"city": "Lisbon", "name": "Alice", "vip": True}
    city = next(t for t in traits if t["name"] == "city")
    assert city["source"] == "app"
    assert city["eventId"] == "e2"
    assert city["updatedAt"] == "2026-03-02T10:00:00+00:00"


async def test_consents_show_the_current_decision_per_purpose(
    api: Api, graph: IdentityGraph
) -> None:
    await seed_alice(graph)
    consents = (await api.data(PROFILE, {"id": ident("cookie", "c1")}))["resolve"]["consents"]
    # marketing: denied later than granted; analytics: an expired grant is no decision.
    assert [(c["purpose"], c["status"]) for c in consents] == [
        ("marketing", "DENIED"),
        ("support", "GRANTED"),
    ]
    assert consents[1]["expiresAt"] == "2999-01-01T00:00:00+00:00"


async def test_customer_by_id_and_by_alias(api: Api, graph: IdentityGraph) -> None:
    await graph.ingest([event("email:a@x.com", at="2026-01-01T00:00:00Z")])
    await graph.ingest([event("email:b@x.com", at="2026-01-02T00:00:00Z")])
    older = await graph.customer_of("email:a@x.com")
    younger = await graph.customer_of("email:b@x.com")
    await graph.ingest([event("email:a@x.com", "email:b@x.com")])
    query = "query($id: ID!) { customer(id: $id) { id aliases size } }"
    expected = {"id": older, "aliases": [younger], "size": 2}
    assert (await api.data(query, {"id": older}))["customer"] == expected
    assert (await api.data(query, {"id": younger}))["customer"] == expected
    assert (await api.data(query, {"id": "cus_nope"}))["customer"] is None


async def test_node_refetches_every_kind_of_object(api: Api, graph: IdentityGraph) -> None:
    await seed_alice(graph)
    await graph.ingest(
        [event("cookie:c1", event_id="e5", interaction={"type": "page_view", "channel": "web"})]
    )
    customer = (
        await api.data(
            '{ resolve(identifier: {kind: "cookie", value: "c1"}) '
            "{ id interactions { edges { node { id interactionId } } } } }"
        )
    )["resolve"]
    interaction = customer["interactions"]["edges"][0]["node"]
    query = """query($id: ID!) { node(id: $id) { __typename id
      ... on Customer { size }
      ... on IdentityNode { kind value }
      ... on Interaction { interactionId type channel } } }"""

    async def node(node_id: str) -> dict[str, Any]:
        found: dict[str, Any] = (await api.data(query, {"id": node_id}))["node"]
        return found

    assert (await node(customer["id"]))["size"] == 4
    for key, typename in (
        ("email:alice@example.com", "Identifier"),
        ("device:d1", "Device"),
        ("account:shop:42", "Account"),
    ):
        kind, _, value = key.partition(":")
        assert await node(tokens.node_id(key)) == {
            "__typename": typename,
            "id": tokens.node_id(key),
            "kind": kind,
            "value": value,
        }
    found = await node(interaction["id"])
    assert found == {
        "__typename": "Interaction",
        "id": interaction["id"],
        "interactionId": "e5#interaction",
        "type": "page_view",
        "channel": "web",
    }
    assert await node(tokens.node_id("email:nobody@example.com")) is None
    assert await node("cus_unknown") is None
    assert await node("email:alice@example.com") is None  # a key is not an id


INTERACTIONS = """
query($id: IdentifierInput!, $first: Int, $after: String, $type: [String!], $since: DateTime) {
  resolve(identifier: $id) {
    interactions(first: $first, after: $after, type: $type, since: $since) {
      totalCount
      edges { cursor node { interactionId type at identityNodes } }
      pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    }
  }
}
"""


async def test_interactions_page_newest_first_with_stable_cursors(
    api: Api, graph: IdentityGraph
) -> None:
    await graph.ingest(
        [
            event(
                "email:a@x.com",
                event_id=f"i{n}",
                at=f"2026-03-0{n}T12:00:00Z",
                interaction={"type": "purchase" if n % 2 else "page_view"},
            )
            for n in range(1, 6)
        ]
    )
    seen: list[str] = []
    after = None
    while True:
        variables = {"id": ident("email", "a@x.com"), "first": 2, "after": after}
        page = (await api.data(INTERACTIONS, variables))["resolve"]["interactions"]
        assert page["totalCount"] == 5
        assert page["pageInfo"]["hasPreviousPage"] is (after is not None)
        seen += [e["node"]["interactionId"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == [f"i{n}#interaction" for n in (5, 4, 3, 2, 1)]

    filtered = await api.data(
        INTERACTIONS,
        {"id": ident("email", "a@x.com"), "type": ["purchase"], "since": "2026-03-02T00:00:00Z"},
    )
    edges = filtered["resolve"]["interactions"]["edges"]
    assert [e["node"]["interactionId"] for e in edges] == ["i5#interaction", "i3#interaction"]
    assert edges[0]["node"]["identityNodes"] == ["email:a@x.com"]


async def test_interactions_default_page_is_20(api: Api, graph: IdentityGraph) -> None:
    await graph.ingest(
        [
            event("email:a@x.com", at=f"2026-03-01T12:00:{n:02d}Z", interaction={"type": "t"})
            for n in range(25)
        ]
    )
    page = (await api.data(INTERACTIONS, {"id": ident("email", "a@x.com")}))["resolve"]
    assert len(page["interactions"]["edges"]) == 20
    assert page["interactions"]["pageInfo"]["hasNextPage"] is True


EXPLAIN = """
query($a: IdentifierInput!, $b: IdentifierInput!) {
  explainLink(a: $a, b: $b) {
    a b verdict linked reason
    path { from to source at eventId }
    rejectedLinks { a b rule limitKind accepted eventId }
    customerA { id } customerB { id }
  }
}
"""


async def test_explain_link_gives_the_shortest_path_of_accepted_links(
    api: Api, graph: IdentityGraph
) -> None:
    await graph.ingest(
        [
            event("email:a@x.com", "cookie:c1", event_id="x1", at="2026-03-01T00:00:00Z"),
            event("cookie:c1", "phone:+16502530000", event_id="x2", source="pos"),
            event("phone:+16502530000", "cookie:c9", event_id="x3"),
        ]
    )
    result = (
        await api.data(
            EXPLAIN, {"a": ident("email", "A@X.com"), "b": ident("phone", "+1 650 253 0000")}
        )
    )["explainLink"]
    assert result["verdict"] == "LINKED"
    assert result["linked"] is True
    assert result["customerA"] == result["customerB"]
    assert result["path"] == [
        {
            "from": "email:a@x.com",
            "to": "cookie:c1",
            "source": "web",
            "at": "2026-03-01T00:00:00+00:00",
            "eventId": "x1",
        },
        {
            "from": "cookie:c1",
            "to": "phone:+16502530000",
            "source": "pos",
            "at": "2026-03-01T12:00:00+00:00",
            "eventId": "x2",
        },
    ]


async def test_explain_link_shows_the_rule_that_keeps_two_apart(
    api: Api, graph: IdentityGraph
) -> None:
    await graph.ingest([event("user_id:u1", "email:a@x.com", event_id="y1")])
    await graph.ingest([event("user_id:u2", "email:a@x.com", event_id="y2")])
    result = (
        await api.data(EXPLAIN, {"a": ident("user_id", "u2"), "b": ident("email", "a@x.com")})
    )["explainLink"]
    assert result["verdict"] == "DIFFERENT_CUSTOMERS"
    assert result["linked"] is False
    assert result["path"] == []
    assert result["customerA"]["id"] != result["customerB"]["id"]
    assert result["rejectedLinks"] == [
        {
            "a": "email:a@x.com",
            "b": "user_id:u2",
            "rule": "LIMIT",
            "limitKind": "user_id",
            "accepted": False,
            "eventId": "y2",
        }
    ]
    assert "limit:user_id" in result["reason"]


async def test_explain_link_with_an_unknown_identifier(api: Api, graph: IdentityGraph) -> None:
    await graph.ingest([event("email:a@x.com")])
    result = (
        await api.data(EXPLAIN, {"a": ident("email", "a@x.com"), "b": ident("cookie", "nope")})
    )["explainLink"]
    assert result["verdict"] == "UNKNOWN_IDENTIFIER"
    assert result["customerB"] is None
    assert result["reason"] == "`b` is not in the graph"


CONFLICTS = """
query($first: Int, $after: String) {
  conflicts(first: $first, after: $after) {
    edges { node { a b rule limitKind customerA { id } customerB { id } } }
    pageInfo { hasNextPage endCursor }
  }
}
"""


async def test_conflicts_page_through_refused_links_newest_first(
    api: Api, graph: IdentityGraph
) -> None:
    for n in range(1, 4):
        await graph.ingest(
            [event(f"user_id:a{n}", f"email:{n}@x.com", at=f"2026-03-0{n}T00:00:00Z")]
        )
        await graph.ingest(
            [event(f"user_id:b{n}", f"email:{n}@x.com", at=f"2026-03-0{n}T01:00:00Z")]
        )
    first = (await api.data(CONFLICTS, {"first": 2}))["conflicts"]
    assert first["pageInfo"]["hasNextPage"] is True
    rest = (await api.data(CONFLICTS, {"first": 2, "after": first["pageInfo"]["endCursor"]}))[
        "conflicts"
    ]
    assert rest["pageInfo"]["hasNextPage"] is False
    nodes = [e["node"] for e in first["edges"] + rest["edges"]]
    assert [(n["a"], n["b"]) for n in nodes] == [
        ("email:3@x.com", "user_id:b3"),
        ("email:2@x.com", "user_id:b2"),
        ("email:1@x.com", "user_id:b1"),
    ]
    assert {(n["rule"], n["limitKind"]) for n in nodes} == {("LIMIT", "user_id")}
    assert all(n["customerA"]["id"] != n["customerB"]["id"] for n in nodes)
