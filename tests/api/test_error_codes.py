"""Machine-readable refusals: every rejected event and every user error carries a
stable ``code`` and a ``path`` to what is at fault, next to the message for people."""

from __future__ import annotations

from typing import Any

from idgraph.service import IdentityGraph
from tests.api.conftest import Api
from tests.events import event

INGEST = """mutation($events: [EventInput!]!) {
  ingest(events: $events) { results { eventId outcome code path reason } }
}"""

SET_CONSENT = """mutation($subject: IdentifierInput!) {
  setConsent(subject: $subject, purpose: "marketing", status: GRANTED, source: "web") {
    event { code path }
    userErrors { code field path message }
  }
}"""

LINK = """mutation($a: IdentifierInput!, $b: IdentifierInput!) {
  link(a: $a, b: $b) { userErrors { code field path } }
}"""


def codes_and_paths(results: list[dict[str, Any]]) -> list[tuple[str, str | None, list[str]]]:
    return [(r["outcome"], r["code"], r["path"]) for r in results]


async def test_each_event_says_why_it_was_not_applied(api: Api, graph: IdentityGraph) -> None:
    await graph.ingest([event("email:gone@x.com", event_id="before")])
    await api.data(
        'mutation { forget(identifier: {kind: "email", value: "gone@x.com"}) '
        "{ userErrors { code } } }"
    )
    events = [
        event("email:a@x.com", event_id="ok"),
        event("email:a@x.com", event_id="ok"),
        event("email:b@x.com", "email:not-an-email", event_id="bad-email"),
        event("email:c@x.com", event_id="bad-trait", traits={"n": 2**70}),
        event("email:gone@x.com", event_id="erased"),
    ]
    results = (await api.data(INGEST, {"events": events}))["ingest"]["results"]
    assert codes_and_paths(results) == [
        ("ACCEPTED", None, []),
        ("DUPLICATE", "DUPLICATE", []),
        ("REJECTED", "INVALID", ["identifiers", "1", "value"]),
        ("REJECTED", "INVALID", ["traits", "n"]),
        ("REJECTED", "ERASED", []),
    ]
    assert results[4]["reason"].startswith("erased")


async def test_consent_for_an_erased_subject_is_an_erased_user_error(
    api: Api, graph: IdentityGraph
) -> None:
    await graph.ingest([event("email:gone@x.com")])
    subject = {"kind": "email", "value": "gone@x.com"}
    await api.data(
        "mutation($s: IdentifierInput!) { forget(identifier: $s) { userErrors { code } } }",
        {"s": subject},
    )
    result = (await api.data(SET_CONSENT, {"subject": subject}))["setConsent"]
    assert result["event"] == {"code": "ERASED", "path": []}
    [error] = result["userErrors"]
    assert (error["code"], error["field"], error["path"]) == ("ERASED", "subject", ["subject"])


async def test_a_user_error_names_the_argument_at_fault(api: Api, graph: IdentityGraph) -> None:
    await graph.ingest([event("email:a@x.com")])
    bad = {"a": {"kind": "email", "value": "a@x.com"}, "b": {"kind": "email", "value": "nope"}}
    assert (await api.data(LINK, bad))["link"]["userErrors"] == [
        {"code": "BAD_USER_INPUT", "field": "b", "path": ["b"]}
    ]
    unknown = {**bad, "b": {"kind": "email", "value": "zz@x.com"}}
    assert (await api.data(LINK, unknown))["link"]["userErrors"] == [
        {"code": "NOT_FOUND", "field": None, "path": []}
    ]
