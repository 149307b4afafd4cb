"""Through the API: one person's activity and consent never show in another person's
profile (issue 13), and a withdrawal wins over any grant recorded before it (issue 8)."""

from __future__ import annotations

import copy
from typing import Any

from idgraph.config import Settings
from idgraph.service import IdentityGraph
from tests.api.conftest import Api, new_key, nodes
from tests.contract.test_attribution import HOUSEHOLD

INGEST = """
mutation($events: [EventInput!]!) {
  ingest(events: $events) { accepted results { eventId outcome reason } userErrors { code } }
}
"""
SET_CONSENT = """
mutation($subject: IdentifierInput!) {
  setConsent(subject: $subject, purpose: "marketing", status: DENIED, source: "prefs") {
    event { outcome }
    userErrors { code }
  }
}
"""
PROFILE = """
query($id: IdentifierInput!) {
  resolve(identifier: $id) {
    identifiers { edges { node { value } } }
    traits { edges { node { name } } }
    interactions { totalCount edges { node { type properties identityNodes } } }
    consents { purpose status identityNode }
  }
}
"""


def api_event(raw: dict[str, Any]) -> dict[str, Any]:
    """An event of the ingest file format as ``EventInput`` (enum values upper-case)."""
    converted = copy.deepcopy(raw)
    if "consent" in converted:
        converted["consent"]["status"] = converted["consent"]["status"].upper()
    return converted


def person(name: str) -> dict[str, Any]:
    return {"id": {"kind": "user_id", "value": name}}


async def test_resolve_anna_shows_her_login_and_no_consent_of_berts(
    api: Api, graph: IdentityGraph, settings: Settings
) -> None:
    result = (await api.data(INGEST, {"events": [api_event(e) for e in HOUSEHOLD]}))["ingest"]
    assert result["accepted"] == 2

    anna = (await api.data(PROFILE, person("anna")))["resolve"]
    assert anna["interactions"]["totalCount"] == 1
    assert [e["node"]["type"] for e in anna["interactions"]["edges"]] == ["login"]
    assert anna["consents"] == []
    bert = (await api.data(PROFILE, person("bert")))["resolve"]
    assert bert["interactions"]["edges"] == [
        {
            "node": {
                "type": "purchase",
                "properties": {"item": "pregnancy test"},
                "identityNodes": ["user_id:bert"],
            }
        }
    ]
    assert bert["consents"] == [
        {"purpose": "marketing", "status": "GRANTED", "identityNode": "user_id:bert"}
    ]

    marketing = api.as_(await new_key(graph.store, settings, "crm", "reader"), "marketing")
    anna = (await marketing.data(PROFILE, person("anna")))["resolve"]
    assert nodes(anna["identifiers"]) == [], "Bert's grant does not make Anna visible to marketing"
    assert anna["interactions"]["totalCount"] == 0
    assert anna["consents"] == []
    bert = (await marketing.data(PROFILE, person("bert")))["resolve"]
    assert sorted(i["value"] for i in nodes(bert["identifiers"])) == ["bert", "c-bert"]


async def test_a_withdrawal_outruns_a_grant_dated_2030_on_the_next_read(
    api: Api, graph: IdentityGraph, settings: Settings
) -> None:
    email = {"kind": "email", "value": "w@x.com"}
    grant = {
        "id": "from-the-future",
        "timestamp": "2030-01-01T00:00:00Z",
        "source": "partner",
        "identifiers": [email, {"kind": "cookie", "value": "w1"}],
        "traits": {"tier": "gold"},
        "consent": {"purpose": "marketing", "status": "GRANTED"},
    }
    ingested = (await api.data(INGEST, {"events": [grant]}))["ingest"]["results"][0]
    marketing = api.as_(await new_key(graph.store, settings, "crm", "reader"), "marketing")
    if ingested["outcome"] == "ACCEPTED":  # ingest may refuse a timestamp this far ahead
        before = (await marketing.data(PROFILE, {"id": email}))["resolve"]
        assert [c["status"] for c in before["consents"]] == ["GRANTED"]
        assert nodes(before["traits"]) == [{"name": "tier"}]

    withdrawal = (await api.data(SET_CONSENT, {"subject": email}))["setConsent"]
    assert withdrawal == {"event": {"outcome": "ACCEPTED"}, "userErrors": []}

    after = (await marketing.data(PROFILE, {"id": email}))["resolve"]
    assert nodes(after["identifiers"]) == []
    assert nodes(after["traits"]) == []
    assert after["interactions"]["totalCount"] == 0
    assert [(c["purpose"], c["status"]) for c in after["consents"]] == [("marketing", "DENIED")]
