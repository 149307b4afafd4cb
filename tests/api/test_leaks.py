"""Steward actions and errors leak nothing consent hides; scopes hold; misses are audited.

The graph: one customer, a chain ``phone — email — cookie`` (so any cut between the phone
and the cookie touches the email), where the email has denied ``marketing`` and the
phone granted it later: under ``marketing`` the email is hidden, the rest shown.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from graphql import get_named_type
from graphql.type import GraphQLObjectType

from idgraph.api.schema import build_schema
from idgraph.config import Settings
from idgraph.service import IdentityGraph
from tests.api.conftest import Api, codes, new_key
from tests.api.opaque import tokens
from tests.events import event

HIDDEN = "hidden.person@example.org"
PHONE = "+16502530000"
COOKIE = "cookie-shown-1"
UNKNOWN = "nobody.at.all@example.org"
UNKNOWN_2 = "never-seen-cookie"

KEYS = {
    "hidden": {"kind": "email", "value": HIDDEN},
    "unknown": {"kind": "email", "value": UNKNOWN},
    "unknown2": {"kind": "cookie", "value": UNKNOWN_2},
    "phone": {"kind": "phone", "value": PHONE},
    "cookie": {"kind": "cookie", "value": COOKIE},
}


async def seed(graph: IdentityGraph) -> None:
    denied = {"purpose": "marketing", "status": "denied"}
    granted = {"purpose": "marketing", "status": "granted"}
    await graph.ingest(
        [
            event(f"phone:{PHONE}", f"email:{HIDDEN}", at="2026-03-01T00:00:00Z"),
            event(f"email:{HIDDEN}", f"cookie:{COOKIE}", at="2026-03-02T00:00:00Z"),
            event(f"email:{HIDDEN}", at="2026-03-03T00:00:00Z", consent=denied),
            event(f"phone:{PHONE}", at="2026-03-04T00:00:00Z", consent=granted),
        ]
    )


@pytest.fixture
async def steward(api: Api, graph: IdentityGraph, settings: Settings) -> Api:
    await seed(graph)
    return api.as_(await new_key(graph.store, settings, "steward", "steward"), "marketing")


LINK = """mutation($a: IdentifierInput!, $b: IdentifierInput!) {
  link(a: $a, b: $b) { actor event { eventId } customer { id } userErrors { code message field } }
}"""
UNLINK = """mutation($a: IdentifierInput!, $b: IdentifierInput!) {
  unlink(a: $a, b: $b, ban: true) {
    actor banned note redacted removedLinks { a b rule nodeA { id } nodeB { id } }
    customers { id identifiers { edges { node { value } } } } userErrors { code message field }
  }
}"""
EXPLAIN = """query($a: IdentifierInput!, $b: IdentifierInput!) {
  explainLink(a: $a, b: $b) {
    a b verdict linked reason path { from to } rejectedLinks { a b }
    nodeA { id kind value } nodeB { id kind value }
    customerA { id } customerB { id }
  }
}"""
NODE = "query($id: ID!) { node(id: $id) { id } }"

# Pairs that must get the same answer, as (a, b) names in KEYS.
MATRIX = [("hidden", "unknown"), ("unknown", "hidden"), ("unknown", "unknown2")]
BESIDE_A_SHOWN = [("phone", "hidden"), ("phone", "unknown")]


async def answers(caller: Api, query: str, pairs: list[tuple[str, str]]) -> list[Any]:
    found = []
    for a, b in pairs:
        result = await caller.query(query, {"a": KEYS[a], "b": KEYS[b]})
        if "explainLink" in query:  # it echoes its (normalized) arguments, nothing else
            result["data"]["explainLink"].pop("a")
            result["data"]["explainLink"].pop("b")
        found.append(result)
    return found


@pytest.mark.parametrize("query", [LINK, UNLINK, EXPLAIN], ids=["link", "unlink", "explainLink"])
@pytest.mark.parametrize("pairs", [MATRIX, BESIDE_A_SHOWN], ids=["neither", "one-shown"])
async def test_hidden_and_unknown_get_identical_answers(
    steward: Api, graph: IdentityGraph, query: str, pairs: list[tuple[str, str]]
) -> None:
    before = await graph.store.counts()
    first, *others = await answers(steward, query, pairs)
    assert all(other == first for other in others), [first, *others]
    assert HIDDEN not in json.dumps(first)
    assert await graph.store.counts() == before  # nothing was written
    if query != EXPLAIN:
        [payload] = first["data"].values()
        assert payload["userErrors"] == [
            {"code": "NOT_FOUND", "message": "`a` or `b` is not in the graph", "field": None}
        ]


async def test_node_of_a_hidden_and_of_an_unknown_identity_node_look_the_same(
    steward: Api,
) -> None:
    hidden = await steward.query(NODE, {"id": tokens.node_id(f"email:{HIDDEN}")})
    unknown = await steward.query(NODE, {"id": tokens.node_id(f"email:{UNKNOWN}")})
    assert hidden == unknown == {"data": {"node": None}}
    shown = tokens.node_id(f"phone:{PHONE}")
    assert await steward.data(NODE, {"id": shown}) == {"node": {"id": shown}}


async def test_unlink_under_a_hiding_purpose_names_nothing_hidden(
    steward: Api, graph: IdentityGraph, api: Api
) -> None:
    result = await steward.data(UNLINK, {"a": KEYS["phone"], "b": KEYS["cookie"]})
    payload = result["unlink"]
    assert payload["userErrors"] == []
    [removed] = payload["removedLinks"]  # phone—email or email—cookie: the email is an end
    assert None in (removed["a"], removed["b"])
    assert {removed["a"], removed["b"]} - {None} <= {f"phone:{PHONE}", f"cookie:{COOKIE}"}
    assert payload["redacted"] == 1
    assert len(payload["customers"]) == 2
    assert HIDDEN not in json.dumps(result)
    # the same split seen under a purpose that shows the email names it
    assert await graph.customer_of(f"phone:{PHONE}") != await graph.customer_of(f"cookie:{COOKIE}")


CONFLICTS = """{ conflicts { edges { cursor node { a b rule customerA { id } customerB { id } } }
  pageInfo { endCursor } } }"""


async def test_conflicts_null_what_consent_hides(steward: Api, graph: IdentityGraph) -> None:
    await graph.ingest([event("user_id:u-first", f"email:{HIDDEN}")])
    await graph.ingest([event("user_id:u-second", f"email:{HIDDEN}")])
    hidden = await steward.data(CONFLICTS)
    [edge] = hidden["conflicts"]["edges"]
    assert (edge["node"]["a"], edge["node"]["b"]) == (None, None)  # opt-in: both hidden
    # nor is a hidden end tied to its customer id
    assert (edge["node"]["customerA"], edge["node"]["customerB"]) == (None, None)
    assert HIDDEN not in json.dumps(hidden)
    support = steward.as_(steward.headers["Authorization"][7:], "support")
    [shown] = (await support.data(CONFLICTS))["conflicts"]["edges"]
    assert (shown["node"]["a"], shown["node"]["b"]) == (f"email:{HIDDEN}", "user_id:u-second")
    assert shown["node"]["customerA"]["id"] == await graph.customer_of(f"email:{HIDDEN}")


SET_CONSENT = """mutation($purpose: String!) {
  setConsent(subject: {kind: "phone", value: "+16502530000"}, purpose: $purpose,
             status: GRANTED, source: "prefs") { event { outcome } userErrors { code field } }
}"""


async def test_set_consent_only_for_purposes_the_key_may_use(
    api: Api, graph: IdentityGraph, settings: Settings
) -> None:
    await seed(graph)
    writer = api.as_(
        await new_key(graph.store, settings, "mkt", "writer", ["marketing"]), "marketing"
    )
    customer = await graph.customer_of(f"phone:{PHONE}")
    assert customer is not None
    consents = len((await graph.store.consents_of([customer]))[customer])
    refused = await writer.query(SET_CONSENT, {"purpose": "analytics"})
    assert refused["data"] == {"setConsent": None}
    assert codes(refused) == ["FORBIDDEN"]
    assert len((await graph.store.consents_of([customer]))[customer]) == consents
    unknown = (await writer.data(SET_CONSENT, {"purpose": "no-such"}))["setConsent"]
    assert unknown["userErrors"] == [{"code": "BAD_USER_INPUT", "field": "purpose"}]
    allowed = (await writer.data(SET_CONSENT, {"purpose": "marketing"}))["setConsent"]
    assert allowed == {"event": {"outcome": "ACCEPTED"}, "userErrors": []}


def selection(type_name: str, field: str) -> str:
    """``field`` with the smallest valid selection under it."""
    schema = build_schema(Settings().api)._schema
    graphql_type = schema.get_type(type_name)
    assert isinstance(graphql_type, GraphQLObjectType)
    named = get_named_type(graphql_type.fields[field].type)
    return f"{field} {{ __typename }}" if isinstance(named, GraphQLObjectType) else field


def fields_of(type_name: str) -> list[str]:
    schema = build_schema(Settings().api)._schema
    graphql_type = schema.get_type(type_name)
    assert isinstance(graphql_type, GraphQLObjectType)
    return sorted(graphql_type.fields)


RESOLVE = '{ resolve(identifier: {kind: "cookie", value: "cookie-shown-1"}) { %s } }'


async def test_the_resolver_role_gets_the_customer_id_and_its_identifier_nothing_else(
    api: Api, graph: IdentityGraph, settings: Settings
) -> None:
    await seed(graph)
    resolver = api.as_(await new_key(graph.store, settings, "edge", "resolver"), "support")
    allowed = await resolver.data(RESOLVE % "id identifiers { edges { node { kind value } } }")
    customer_id = await graph.customer_of(f"cookie:{COOKIE}")
    assert allowed == {
        "resolve": {
            "id": customer_id,
            "identifiers": {"edges": [{"node": {"kind": "cookie", "value": COOKIE}}]},
        }
    }
    customer_fields = [f for f in fields_of("Customer") if f not in ("id", "identifiers")]
    identifier_fields = [f for f in fields_of("Identifier") if f not in ("kind", "value")]
    assert {"createdAt", "size", "traits", "interactions"} <= set(customer_fields)
    assert {"id", "createdAt", "customer"} <= set(identifier_fields)
    for field in customer_fields:
        result = await resolver.query(RESOLVE % f"id {selection('Customer', field)}")
        assert codes(result) == ["FORBIDDEN"], (field, result)
        assert result["errors"][0]["path"] == ["resolve", field]
        # non-null fields null their customer (GraphQL's null propagation); `splitFrom`
        # is the one nullable field
        expected = {"id": customer_id, field: None} if field == "splitFrom" else None
        assert result["data"]["resolve"] == expected
    for field in identifier_fields:
        inner = f"kind value {selection('Identifier', field)}"
        query = RESOLVE % f"id identifiers {{ edges {{ node {{ {inner} }} }} }}"
        result = await resolver.query(query)
        assert codes(result) == ["FORBIDDEN"], (field, result)
        assert result["errors"][0]["path"][:5] == ["resolve", "identifiers", "edges", 0, "node"]


AUDIT = "{ auditLog(first: 20) { edges { node { actor operation customerId detail } } } }"


async def test_lookups_that_find_nothing_or_only_hidden_things_are_audited(
    api: Api, graph: IdentityGraph, settings: Settings
) -> None:
    await seed(graph)
    customer = await graph.customer_of(f"phone:{PHONE}")
    resolver = api.as_(await new_key(graph.store, settings, "edge", "resolver"), "support")
    reader = api.as_(await new_key(graph.store, settings, "crm", "reader"), "marketing")
    miss = '{ resolve(identifier: {kind: "email", value: "nobody.at.all@example.org"}) { id } }'
    assert await resolver.data(miss) == {"resolve": None}
    customer_query = "query($id: ID!) { customer(id: $id) { id } }"
    assert await reader.data(customer_query, {"id": "cus_0000000000000000"}) == {"customer": None}
    assert await reader.data(NODE, {"id": tokens.node_id(f"email:{UNKNOWN}")}) == {"node": None}
    assert await reader.data(NODE, {"id": tokens.node_id(f"email:{HIDDEN}")}) == {"node": None}
    entries = [e["node"] for e in (await api.data(AUDIT))["auditLog"]["edges"]]
    assert [(e["actor"], e["operation"], e["customerId"], e["detail"]) for e in entries] == [
        ("crm", "NODE", customer, "hidden"),
        ("crm", "NODE", None, "miss"),
        ("crm", "CUSTOMER", None, "miss"),
        ("edge", "RESOLVE", None, "miss"),
    ]
    assert UNKNOWN not in json.dumps(entries)
