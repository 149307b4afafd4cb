"""Consent on reads, through the API: for each role × purpose × consent state, exactly
what a profile query returns, what it counts as redacted, and what it refuses."""

from __future__ import annotations

import json
from typing import Any

import pytest

from idgraph.config import Settings
from idgraph.service import IdentityGraph
from tests.api.conftest import Api, codes, new_key, nodes
from tests.api.opaque import assert_opaque, tokens
from tests.events import event

EMAIL, PHONE, COOKIE = "email:m@x.com", "phone:+16502530000", "cookie:k1"
ALL = {"m@x.com", "+16502530000", "k1"}

# Decisions for purpose P, as (identity key, status, expiresAt) in time order.
STATES: dict[str, list[tuple[str, str, str | None]]] = {
    "no decision": [],
    # the email's own grant shows it; the customer's latest decision (the phone's) denies
    "identifier grant": [(EMAIL, "granted", None), (PHONE, "denied", None)],
    # the email's own denial hides it; the customer's latest decision grants the rest
    "identifier deny": [(EMAIL, "denied", None), (PHONE, "granted", None)],
    # no decision on the email: the customer's (the phone's) grant shows it
    "customer grant on another node": [(PHONE, "granted", None)],
    # an expired grant is no decision: the purpose's default applies
    "expired grant": [(EMAIL, "granted", "2026-02-01T00:00:00Z")],
}

# For each state, the purpose's default: (identifiers shown, customer-level data shown).
EXPECTED: dict[str, dict[bool, tuple[set[str], bool]]] = {
    "no decision": {True: (ALL, True), False: (set(), False)},
    "identifier grant": {True: ({"m@x.com"}, False), False: ({"m@x.com"}, False)},
    "identifier deny": {True: (ALL - {"m@x.com"}, True), False: (ALL - {"m@x.com"}, True)},
    "customer grant on another node": {True: (ALL, True), False: (ALL, True)},
    "expired grant": {True: (ALL, True), False: (set(), False)},
}

PURPOSES = {"support": True, "marketing": False}  # name: default allows
PROFILE_FIELDS = ("devices", "traits", "interactions", "consents", "redacted")

QUERY = """
query($id: IdentifierInput!) {
  resolve(identifier: $id) {
    id
    identifiers { edges { node { value } } }
    devices { edges { node { id value } } }
    traits { edges { node { name identityNode } } }
    interactions { totalCount edges { node { id interactionId identityNodes } } }
    consents { purpose status identityNode }
    redacted { identifiers devices accounts traits interactions }
  }
}
"""

RESOLVER_QUERY = """
query($id: IdentifierInput!) {
  resolve(identifier: $id) { id identifiers { edges { node { value } } } }
}
"""


async def seed(graph: IdentityGraph, purpose: str, state: str) -> None:
    await graph.ingest(
        [
            event(
                EMAIL,
                PHONE,
                COOKIE,
                "device:d1",
                at="2026-01-01T00:00:00Z",
                traits={"tier": "gold"},
                interaction={"type": "purchase"},
            )
        ]
    )
    for n, (key, status, expires) in enumerate(STATES[state], start=1):
        decision = {"purpose": purpose, "status": status}
        if expires:
            decision["expiresAt"] = expires
        await graph.ingest([event(key, at=f"2026-01-0{n + 1}T00:00:00Z", consent=decision)])


def assert_no_hidden_key(result: dict[str, Any], shown: set[str]) -> None:
    """No identifier value consent hides appears anywhere, and no id holds any value."""
    text = json.dumps(result)
    for value in ALL - shown:
        assert value not in text, (value, result)
    assert_opaque(result, ALL)


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("purpose", PURPOSES)
@pytest.mark.parametrize("role", ["admin", "steward", "reader", "resolver", "writer"])
async def test_profile_by_role_purpose_and_consent_state(
    api: Api, graph: IdentityGraph, settings: Settings, role: str, purpose: str, state: str
) -> None:
    await seed(graph, purpose, state)
    caller = api.as_(await new_key(graph.store, settings, "caller", role), purpose)
    result = await caller.query(QUERY, {"id": {"kind": "email", "value": "m@x.com"}})
    shown, customer_level = EXPECTED[state][PURPOSES[purpose]]
    customer_id = await graph.customer_of(EMAIL)
    assert_no_hidden_key(result, shown)

    if role == "writer":  # no resolve permission: nothing at all
        assert result["data"] == {"resolve": None}
        assert codes(result) == ["FORBIDDEN"]
        return
    if role == "resolver":
        # a profile field is refused, and its customer is null (the fields are non-null)
        assert result["data"] == {"resolve": None}
        assert [tuple(e["path"]) for e in result["errors"]] == [("resolve", PROFILE_FIELDS[0])]
        assert codes(result) == ["FORBIDDEN"]
        # what it may ask: the id, and the identifier it supplied if consent shows it
        allowed = await caller.data(RESOLVER_QUERY, {"id": {"kind": "email", "value": "m@x.com"}})
        assert allowed["resolve"]["id"] == customer_id
        identifiers = nodes(allowed["resolve"]["identifiers"])
        assert {i["value"] for i in identifiers} == shown & {"m@x.com"}
        return

    customer = result["data"]["resolve"]
    assert customer["id"] == customer_id
    assert "errors" not in result, result["errors"]
    assert {i["value"] for i in nodes(customer["identifiers"])} == shown
    device = {"id": tokens.node_id("device:d1"), "value": "d1"}
    assert nodes(customer["devices"]) == ([device] if customer_level else [])
    assert [t["name"] for t in nodes(customer["traits"])] == (["tier"] if customer_level else [])
    interactions = customer["interactions"]
    assert interactions["totalCount"] == len(interactions["edges"]) == int(customer_level)
    for edge in interactions["edges"]:
        assert set(edge["node"]["identityNodes"]) <= {f"email:{v}" for v in shown} | {
            PHONE,
            COOKIE,
            "device:d1",
        }
    # consents are shown to every profile reader, whatever they decide
    decided = {purpose} if STATES[state] and state != "expired grant" else set()
    assert {c["purpose"] for c in customer["consents"]} == decided
    assert customer["redacted"] == {
        "identifiers": 3 - len(shown),
        "devices": 0 if customer_level else 1,
        "accounts": 0,
        "traits": 0 if customer_level else 1,
        "interactions": 0 if customer_level else 1,
    }


NODE = "query($id: ID!) { node(id: $id) { id ... on Identifier { value } } }"
EXPLAIN = """
query($a: IdentifierInput!, $b: IdentifierInput!) {
  explainLink(a: $a, b: $b) { a b verdict linked reason path { from to } customerA { id } }
}
"""


async def test_hidden_and_nonexistent_look_the_same(
    api: Api, graph: IdentityGraph, settings: Settings
) -> None:
    await seed(graph, "marketing", "identifier deny")
    steward = api.as_(await new_key(graph.store, settings, "s", "steward"), "marketing")

    hidden = await steward.query(NODE, {"id": tokens.node_id(EMAIL)})
    unknown = await steward.query(NODE, {"id": tokens.node_id("email:zz@x.com")})
    assert hidden == unknown == {"data": {"node": None}}
    phone_id = tokens.node_id(PHONE)
    assert (await steward.data(NODE, {"id": phone_id}))["node"] == {
        "id": phone_id,
        "value": PHONE[6:],
    }

    phone = {"kind": "phone", "value": "+16502530000"}
    explained = (await steward.data(EXPLAIN, {"a": ident(EMAIL), "b": phone}))["explainLink"]
    nobody = (await steward.data(EXPLAIN, {"a": ident("email:zz@x.com"), "b": phone}))[
        "explainLink"
    ]
    for result, key in ((explained, EMAIL), (nobody, "email:zz@x.com")):
        assert result == {
            "a": key,
            "b": PHONE,
            "verdict": "UNKNOWN_IDENTIFIER",
            "linked": False,
            "reason": "`a` is not in the graph",
            "path": [],
            "customerA": None,
        }
    # between two shown nodes, a hop through the hidden email would be null, never its key
    linked = (await steward.data(EXPLAIN, {"a": phone, "b": ident(COOKIE)}))["explainLink"]
    assert linked["verdict"] == "LINKED"
    assert all(EMAIL not in (hop["from"], hop["to"]) for hop in linked["path"])


def ident(key: str) -> dict[str, str]:
    kind, _, value = key.partition(":")
    return {"kind": kind, "value": value}


async def test_interactions_hidden_by_consent_are_counted_not_shown_nor_refetchable(
    api: Api, graph: IdentityGraph, settings: Settings
) -> None:
    await seed(graph, "marketing", "no decision")
    reader = await new_key(graph.store, settings, "r", "reader")
    email = {"id": ident(EMAIL)}
    supported = (await api.as_(reader, "support").data(QUERY, email))["resolve"]
    interaction_id = supported["interactions"]["edges"][0]["node"]["id"]
    marketing = api.as_(reader, "marketing")
    hidden = (await marketing.data(QUERY, email))["resolve"]
    assert hidden["interactions"] == {"totalCount": 0, "edges": []}
    assert hidden["redacted"]["interactions"] == 1
    assert (await marketing.data(NODE, {"id": interaction_id}))["node"] is None
    assert (await api.as_(reader, "support").data(NODE, {"id": interaction_id}))["node"]
