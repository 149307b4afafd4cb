"""Mutations: ingest, link, unlink; input problems come back as userErrors."""

from __future__ import annotations

from typing import Any

from idgraph.config import Settings
from idgraph.service import IdentityGraph
from tests.api.conftest import Api, new_key, nodes
from tests.api.opaque import tokens
from tests.events import event

INGEST = """
mutation($events: [EventInput!]!) {
  ingest(events: $events) {
    accepted duplicates rejected
    results { eventId outcome reason customerIds }
    customers {
      id size identifiers { edges { node { id } } }
      devices { edges { node { id os } } } accounts { edges { node { id } } }
    }
    userErrors { code message field }
  }
}
"""

LINK = """
mutation($a: IdentifierInput!, $b: IdentifierInput!, $reason: String) {
  link(a: $a, b: $b, reason: $reason) {
    actor
    event { eventId outcome }
    customer { id size }
    userErrors { code message field }
  }
}
"""

UNLINK = """
mutation($a: IdentifierInput!, $b: IdentifierInput!, $ban: Boolean!) {
  unlink(a: $a, b: $b, ban: $ban, reason: "two people") {
    actor banned note
    removedLinks { a b rule }
    redacted
    customers { id size }
    userErrors { code message field }
  }
}
"""


def ident(kind: str, value: str) -> dict[str, str]:
    return {"kind": kind, "value": value}


def full_event(event_id: str = "api-1") -> dict[str, Any]:
    return {
        "id": event_id,
        "timestamp": "2026-03-01T12:00:00+02:00",
        "source": "web",
        "identifiers": [ident("email", "Alice@Example.com"), ident("cookie", "ck-1")],
        "device": {"id": "dev-1", "os": "ios"},
        "account": {"system": "Shop", "id": "42"},
        "traits": {"name": "Alice"},
        "interaction": {"type": "purchase", "channel": "store", "properties": {"amount": 4.5}},
        "consent": {"purpose": "marketing", "status": "GRANTED"},
    }


async def test_ingest_reports_each_event_and_the_customers_touched(
    api: Api, graph: IdentityGraph
) -> None:
    bad = {"id": "api-2", "timestamp": "1969-12-31T23:59:59Z", "source": "web"}
    result = (await api.data(INGEST, {"events": [full_event(), bad]}))["ingest"]
    assert (result["accepted"], result["duplicates"], result["rejected"]) == (1, 0, 1)
    assert result["userErrors"] == []
    accepted, rejected = result["results"]
    assert accepted["outcome"] == "ACCEPTED"
    assert rejected == {
        "eventId": "api-2",
        "outcome": "REJECTED",
        "reason": "event 'api-2': timestamp: '1969-12-31T23:59:59Z' is outside "
        "1970-01-01 to 9999-12-31 (UTC)",
        "customerIds": [],
    }
    [customer] = result["customers"]
    assert customer["id"] == accepted["customerIds"][0]
    assert customer["size"] == 4
    assert nodes(customer["devices"]) == [{"id": tokens.node_id("device:dev-1"), "os": "ios"}]
    assert nodes(customer["accounts"]) == [{"id": tokens.node_id("account:shop:42")}]
    assert await graph.customer_of("email:alice@example.com") == customer["id"]

    again = (await api.data(INGEST, {"events": [full_event()]}))["ingest"]
    assert again["results"][0]["outcome"] == "DUPLICATE"


async def test_ingest_refuses_more_than_1000_events_and_writes_nothing(
    api: Api, graph: IdentityGraph
) -> None:
    events = [
        {"id": f"b{n}", "timestamp": "2026-03-01T00:00:00Z", "source": "web",
         "identifiers": [ident("cookie", f"c{n}")]}
        for n in range(1001)
    ]  # fmt: skip
    result = (await api.data(INGEST, {"events": events}))["ingest"]
    assert result["userErrors"] == [
        {
            "code": "BAD_USER_INPUT",
            "message": "at most 1000 events per call, got 1001",
            "field": "events",
        }
    ]
    assert result["results"] == []
    assert (await graph.store.counts())["events"] == 0
    ok = (await api.data(INGEST, {"events": events[:1000]}))["ingest"]
    assert ok["accepted"] == 1000


async def test_link_joins_two_customers_and_records_who_and_why(
    api: Api, graph: IdentityGraph, settings: Settings
) -> None:
    await graph.ingest([event("email:a@x.com"), event("phone:+16502530000")])
    steward = api.as_(await new_key(graph.store, settings, "steward-acme", "steward"))
    result = (
        await steward.data(
            LINK,
            {"a": ident("email", "A@x.com"), "b": ident("phone", "650-253-0000"), "reason": "same"},
        )
    )["link"]
    assert result["userErrors"] == []
    assert result["actor"] == "steward-acme"
    assert result["event"]["eventId"].startswith("manual-link:")
    assert result["event"]["outcome"] == "ACCEPTED"
    assert result["customer"]["size"] == 2
    assert await graph.customer_of("email:a@x.com") == await graph.customer_of("phone:+16502530000")
    [entry] = await graph.store.audit_log(customer_id=None, limit=10)
    assert (entry.actor, entry.purpose, entry.operation, entry.customer_id) == (
        "steward-acme",
        "support",
        "link",
        result["customer"]["id"],
    )
    assert entry.detail == f"event={result['event']['eventId']} reason=same"
    links = await graph.store.links_of(["email:a@x.com"])
    assert [(k.source, k.event_id) for k in links] == [("steward", result["event"]["eventId"])]


async def test_link_refused_by_a_rule_is_a_user_error(api: Api, graph: IdentityGraph) -> None:
    await graph.ingest([event("user_id:u1"), event("user_id:u2")])
    result = (await api.data(LINK, {"a": ident("user_id", "u1"), "b": ident("user_id", "u2")}))[
        "link"
    ]
    assert result["actor"] == "test-admin"
    assert result["customer"] is None
    assert result["event"]["outcome"] == "ACCEPTED"
    assert result["userErrors"] == [
        {
            "code": "RULE_VIOLATION",
            "message": "the rules refused the link (limit:user_id)",
            "field": None,
        }
    ]
    assert await graph.customer_of("user_id:u1") != await graph.customer_of("user_id:u2")


async def test_link_needs_two_known_valid_identity_nodes(api: Api, graph: IdentityGraph) -> None:
    await graph.ingest([event("email:a@x.com", "device:d1")])

    async def errors(a: dict[str, str], b: dict[str, str]) -> list[dict[str, Any]]:
        result = (await api.data(LINK, {"a": a, "b": b}))["link"]
        assert result["event"] is None
        return [{k: e[k] for k in ("code", "field")} for e in result["userErrors"]]

    assert await errors(ident("email", "a@x.com"), ident("email", "b@x.com")) == [
        {"code": "NOT_FOUND", "field": None}
    ]
    assert await errors(ident("email", "nope"), ident("email", "a@x.com")) == [
        {"code": "BAD_USER_INPUT", "field": "a"}
    ]
    assert await errors(ident("device", "d1"), ident("device", "d2")) == [
        {"code": "BAD_USER_INPUT", "field": "b"}
    ]
    assert (await graph.store.counts())["events"] == 1


async def test_unlink_splits_and_bans(api: Api, graph: IdentityGraph, settings: Settings) -> None:
    await graph.ingest([event("email:a@x.com", "device:shared", "email:b@x.com")])
    before = await graph.customer_of("email:a@x.com")
    variables = {"a": ident("email", "a@x.com"), "b": ident("email", "b@x.com"), "ban": True}
    ops = api.as_(await new_key(graph.store, settings, "ops", "steward"))
    result = (await ops.data(UNLINK, variables))["unlink"]
    assert result["userErrors"] == []
    assert result["actor"] == "ops"
    assert result["banned"] is True
    assert {r["rule"] for r in result["removedLinks"]} == {"UNLINK"}
    ends = {r["a"] for r in result["removedLinks"]} | {r["b"] for r in result["removedLinks"]}
    assert ends <= {"email:a@x.com", "email:b@x.com", "device:shared"}  # all shown
    assert result["redacted"] == 0
    assert result["customers"][0]["id"] == before
    assert sum(c["size"] for c in result["customers"]) == 3
    assert await graph.customer_of("email:a@x.com") != await graph.customer_of("email:b@x.com")
    [entry] = await graph.store.audit_log(customer_id=before, limit=10)
    assert (entry.actor, entry.operation) == ("ops", "unlink")
    assert entry.detail.endswith("reason=two people")
    # The ban holds: new evidence cannot join them again, and stewards see why.
    await graph.ingest([event("email:a@x.com", "email:b@x.com")])
    assert await graph.customer_of("email:a@x.com") != await graph.customer_of("email:b@x.com")
    conflicts = await ops.data("{ conflicts { edges { node { a b rule limitKind } } } }")
    assert {"a": "email:a@x.com", "b": "email:b@x.com", "rule": "BAN", "limitKind": None} in [
        e["node"] for e in conflicts["conflicts"]["edges"]
    ]


async def test_unlink_of_unknown_identifier_is_a_user_error(api: Api, graph: IdentityGraph) -> None:
    await graph.ingest([event("email:a@x.com")])
    variables = {"a": ident("email", "a@x.com"), "b": ident("email", "zz@x.com"), "ban": False}
    result = (await api.data(UNLINK, variables))["unlink"]
    assert result["customers"] == []
    assert result["userErrors"] == [
        {"code": "NOT_FOUND", "message": "`a` or `b` is not in the graph", "field": None}
    ]
