"""setConsent, forget and the audit log, through the API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from idgraph.config import Settings
from idgraph.service import IdentityGraph
from idgraph.store.sqlite import SqliteStore
from tests.api.conftest import Api, codes, new_key, nodes
from tests.api.opaque import tokens
from tests.events import event
from tests.test_store_files import LATER, OTHERS, PERSON, PLAINTEXT, leftovers

SET_CONSENT = """
mutation($subject: IdentifierInput!, $purpose: String!, $status: ConsentStatus!,
         $expiresAt: DateTime) {
  setConsent(subject: $subject, purpose: $purpose, status: $status, expiresAt: $expiresAt,
             source: "preference-center") {
    event { eventId outcome reason }
    customer { id }
    userErrors { code message field }
  }
}
"""
FORGET = """
mutation($id: IdentifierInput!) {
  forget(identifier: $id) {
    erasure { customerId identityNodes { kind count } aliases links traits interactions consents }
    userErrors { code message field }
  }
}
"""
PROFILE = """
query($id: IdentifierInput!) {
  resolve(identifier: $id) { id identifiers { edges { node { value } } } }
}
"""
AUDIT = """
query($customerId: ID, $first: Int, $after: String) {
  auditLog(customerId: $customerId, first: $first, after: $after) {
    edges { cursor node { actor purpose operation customerId detail at } }
    pageInfo { hasNextPage endCursor }
  }
}
"""
EMAIL = {"kind": "email", "value": "a@x.com"}


def consent(**overrides: Any) -> dict[str, Any]:
    return {"subject": EMAIL, "purpose": "marketing", "status": "GRANTED", **overrides}


async def test_set_consent_changes_what_a_purpose_shows(
    api: Api, graph: IdentityGraph, settings: Settings
) -> None:
    await graph.ingest([event("email:a@x.com", "cookie:c1")])
    writer = api.as_(await new_key(graph.store, settings, "prefs", "writer"))
    reader = api.as_(await new_key(graph.store, settings, "crm", "reader"), "marketing")
    assert nodes((await reader.data(PROFILE, {"id": EMAIL}))["resolve"]["identifiers"]) == []
    result = (await writer.data(SET_CONSENT, consent()))["setConsent"]
    assert result["userErrors"] == []
    assert result["event"]["outcome"] == "ACCEPTED"
    assert result["event"]["eventId"].startswith("consent:")
    assert result["customer"] == {"id": await graph.customer_of("email:a@x.com")}
    shown = nodes((await reader.data(PROFILE, {"id": EMAIL}))["resolve"]["identifiers"])
    assert shown == [{"value": "c1"}, {"value": "a@x.com"}]
    # a grant that has already lapsed is no decision; the latest decision counts
    await writer.data(SET_CONSENT, consent(expiresAt="2020-01-01T00:00:00Z"))
    assert nodes((await reader.data(PROFILE, {"id": EMAIL}))["resolve"]["identifiers"]) == []


async def test_set_consent_user_errors(api: Api, graph: IdentityGraph) -> None:
    async def errors(**overrides: Any) -> list[tuple[str, str | None]]:
        result = (await api.data(SET_CONSENT, consent(**overrides)))["setConsent"]
        return [(e["code"], e["field"]) for e in result["userErrors"]]

    assert await errors(purpose="spam") == [("BAD_USER_INPUT", "purpose")]
    assert await errors(subject={"kind": "email", "value": "nope"}) == [
        ("BAD_USER_INPUT", "subject")
    ]
    # a time without an offset is no DateTime: the request is refused before it runs
    assert codes(await api.query(SET_CONSENT, consent(expiresAt="2030-01-01T00:00:00"))) == [
        "BAD_USER_INPUT"
    ]
    assert (await graph.store.counts())["events"] == 0


async def test_forget_erases_the_customer_and_refuses_replays(
    api: Api, graph: IdentityGraph, settings: Settings
) -> None:
    original = event(
        "email:a@x.com",
        "phone:+16502530000",
        "device:d1",
        event_id="e1",
        traits={"tier": "gold"},
        interaction={"type": "purchase"},
        consent={"purpose": "marketing", "status": "granted"},
    )
    await graph.ingest([original])
    customer_id = await graph.customer_of("email:a@x.com")
    steward = api.as_(await new_key(graph.store, settings, "s", "steward"))
    assert (await steward.query(FORGET, {"id": EMAIL}))["data"] == {"forget": None}

    result = (await api.data(FORGET, {"id": EMAIL}))["forget"]
    assert result["userErrors"] == []
    assert result["erasure"] == {
        "customerId": customer_id,
        "identityNodes": [
            {"kind": "device", "count": 1},
            {"kind": "email", "count": 1},
            {"kind": "phone", "count": 1},
        ],
        "aliases": 0,
        "links": 2,
        "traits": 1,
        "interactions": 1,
        "consents": 1,
    }
    phone = {"kind": "phone", "value": "+1 650 253 0000"}
    assert (await api.data(PROFILE, {"id": phone})) == {"resolve": None}
    assert (await api.data(PROFILE, {"id": EMAIL})) == {"resolve": None}
    assert (await api.data(FORGET, {"id": EMAIL}))["forget"]["userErrors"][0]["code"] == (
        "NOT_FOUND"
    )

    replay = {**original, "id": "e1-again"}
    replay["consent"] = {"purpose": "marketing", "status": "GRANTED"}
    ingest = "mutation($e: [EventInput!]!) { ingest(events: $e) { results { outcome reason } } }"
    [outcome] = (await api.data(ingest, {"e": [replay]}))["ingest"]["results"]
    assert outcome["outcome"] == "REJECTED"
    assert outcome["reason"].startswith("erased")
    refused = (await api.data(SET_CONSENT, consent()))["setConsent"]
    assert refused["event"]["outcome"] == "REJECTED"
    assert [(e["code"], e["field"]) for e in refused["userErrors"]] == [("ERASED", "subject")]
    assert "erased" in refused["userErrors"][0]["message"]


async def test_audit_log_records_reads_and_changes_with_key_and_purpose(
    api: Api, graph: IdentityGraph, settings: Settings
) -> None:
    await graph.ingest([event("email:a@x.com", "cookie:c1"), event("email:b@x.com")])
    a_id = await graph.customer_of("email:a@x.com")
    b_id = await graph.customer_of("email:b@x.com")
    reader = api.as_(await new_key(graph.store, settings, "shop-frontend", "reader"), "support")
    writer = api.as_(await new_key(graph.store, settings, "prefs", "writer"), "marketing")
    # one request, two customers read: one audit write, one entry per customer
    both = (
        '{ a: resolve(identifier: {kind: "email", value: "a@x.com"}) { id } '
        'b: resolve(identifier: {kind: "email", value: "b@x.com"}) { id } }'
    )
    await reader.data(both)
    await reader.data("query($id: ID!) { customer(id: $id) { id } }", {"id": a_id})
    await reader.data(
        "query($id: ID!) { node(id: $id) { id } }", {"id": tokens.node_id("cookie:c1")}
    )
    await writer.data(SET_CONSENT, consent())
    assert (
        await reader.data(
            'query { nothing: resolve(identifier: {kind: "email", value: "zz@x.com"}) { id } }'
        )
    )["nothing"] is None

    def rows(page: dict[str, Any]) -> list[tuple[str, str, str, str]]:
        return [
            (n["actor"], n["purpose"], n["operation"], n["customerId"])
            for n in (e["node"] for e in page["edges"])
        ]

    page = (await api.data(AUDIT, {"customerId": a_id}))["auditLog"]
    assert rows(page) == [
        ("prefs", "marketing", "SET_CONSENT", a_id),
        ("shop-frontend", "support", "NODE", a_id),
        ("shop-frontend", "support", "CUSTOMER", a_id),
        ("shop-frontend", "support", "RESOLVE", a_id),
    ]
    assert page["edges"][0]["node"]["detail"] == "marketing=granted"
    everything = (await api.data(AUDIT, {"first": 5}))["auditLog"]
    assert everything["pageInfo"]["hasNextPage"] is True
    # the resolve that found nothing is audited too
    assert rows(everything)[0] == ("shop-frontend", "support", "RESOLVE", None)
    assert everything["edges"][0]["node"]["detail"] == "miss"
    rest = (await api.data(AUDIT, {"first": 5, "after": everything["pageInfo"]["endCursor"]}))[
        "auditLog"
    ]
    assert rows(rest) == [("shop-frontend", "support", "RESOLVE", a_id)]
    assert ("shop-frontend", "support", "RESOLVE", b_id) in rows(everything)
    assert (await reader.query(AUDIT))["data"] == {"auditLog": None}


async def test_forget_leaves_no_plaintext_in_the_store_files(
    api: Api, graph: IdentityGraph
) -> None:
    if not isinstance(graph.store, SqliteStore):
        pytest.skip("store files are SQLite's; on Neo4j see the README (Neo4j, erasure)")
    db = Path(graph.store.path)
    await graph.ingest([PERSON, LATER, *OTHERS])
    email = {"kind": "email", "value": "Quentin.Zebulon-7781@Example.org"}
    assert (await api.data(PROFILE, {"id": email}))["resolve"] is not None  # audited read
    assert {value for _, value in leftovers(db)} == set(PLAINTEXT)

    result = (await api.data(FORGET, {"id": email}))["forget"]

    assert result["userErrors"] == []
    assert leftovers(db) == []
    entries = await graph.store.audit_log(customer_id=None, limit=10)
    assert [e.operation for e in entries] == ["forget", "resolve"]
    assert not any(v.lower() in repr(entries).lower() for v in PLAINTEXT)
