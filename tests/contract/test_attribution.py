"""Every event's data belongs to one person: its subject, the highest-priority identity
node of the event (first in event order on ties). Its interaction, traits and consent
decision show in the customer that holds that node, and in no other — through merges,
refused links, unlinks and erasure (issue 13). Consent decisions are ordered by when
idgraph recorded them, not by the time their source claims (issue 8)."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from idgraph.domain.consent import current_decisions, evaluate
from idgraph.domain.model import ConsentStatus, Outcome, utcnow
from idgraph.service import IdentityGraph
from idgraph.store.port import Store
from idgraph.store.sqlite import SqliteStore
from tests.conftest import neo4j_settings, run_on_graph
from tests.contract.test_properties import BACKENDS, TIGHT, property_settings
from tests.events import event

HOUSEHOLD = [
    json.loads(line)
    for line in (
        '{"id":"h1","timestamp":"2026-01-01T10:00:00Z","source":"app","identifiers":'
        '[{"kind":"user_id","value":"anna"},{"kind":"cookie","value":"c-anna"}],'
        '"device":{"id":"tablet-1"},"interaction":{"type":"login","channel":"app"}}',
        '{"id":"h2","timestamp":"2026-01-01T11:00:00Z","source":"app","identifiers":'
        '[{"kind":"user_id","value":"bert"},{"kind":"cookie","value":"c-bert"}],'
        '"device":{"id":"tablet-1"},"interaction":{"type":"purchase","channel":"app",'
        '"properties":{"item":"pregnancy test"}},'
        '"consent":{"purpose":"marketing","status":"granted"}}',
    )
]


async def customer(graph: IdentityGraph, key: str) -> str:
    customer_id = await graph.customer_of(key)
    assert customer_id is not None, key
    return customer_id


@pytest.mark.parametrize("batches", [[HOUSEHOLD], [HOUSEHOLD[:1], HOUSEHOLD[1:]]])
async def test_a_shared_tablet_does_not_hand_one_persons_data_to_another(
    graph: IdentityGraph, batches: list[list[dict[str, Any]]]
) -> None:
    for batch in batches:
        await graph.ingest(batch)
    store = graph.store
    anna, bert = await customer(graph, "user_id:anna"), await customer(graph, "user_id:bert")
    assert anna != bert
    assert await customer(graph, "device:tablet-1") == anna, "the tablet stays with Anna"
    refused = [k for k in await store.links_of(["user_id:bert"]) if not k.accepted]
    assert [(k.a, k.b, k.rule) for k in refused] == [
        ("device:tablet-1", "user_id:bert", "limit:user_id")
    ]

    interactions = await store.interactions_of([anna, bert], limit=10)
    assert [(i.type, i.keys) for i in interactions[anna]] == [("login", ("user_id:anna",))]
    assert [(i.type, i.keys) for i in interactions[bert]] == [("purchase", ("user_id:bert",))]
    assert await store.count_interactions([anna, bert]) == {anna: 1, bert: 1}

    consents = await store.consents_of([anna, bert])
    assert consents[anna] == [], "Anna never decided anything"
    assert [(c.key, c.status) for c in consents[bert]] == [("user_id:bert", ConsentStatus.GRANTED)]
    marketing = graph.settings.purpose("marketing")
    assert marketing is not None
    assert not evaluate(consents[anna], marketing, utcnow()).allows_identifier("user_id:anna")
    assert await graph.check() == []


async def test_an_anonymous_visit_on_a_shared_tablet_belongs_to_the_cookies_person(
    graph: IdentityGraph,
) -> None:
    """Bert browses the family tablet without logging in: only his cookie and the tablet
    are in the event. The cookie is his; the tablet stays with Anna (its link is refused),
    so the visit is Bert's. (With devices ranked before cookies, as before, the tablet
    was the subject and Anna got it.)"""
    await graph.ingest(HOUSEHOLD)
    visit = {
        "id": "h3",
        "timestamp": "2026-01-01T12:00:00Z",
        "source": "web",
        "identifiers": [{"kind": "cookie", "value": "c-bert"}],
        "device": {"id": "tablet-1"},
        "interaction": {"type": "page_view", "properties": {"path": "/baby-names"}},
        "traits": {"interest": "baby names"},
    }
    await graph.ingest([visit])
    anna, bert = await customer(graph, "user_id:anna"), await customer(graph, "user_id:bert")
    interactions = await graph.store.interactions_of([anna, bert], limit=10)
    assert [i.type for i in interactions[anna]] == ["login"]
    assert sorted(i.type for i in interactions[bert]) == ["page_view", "purchase"]
    assert (await graph.profile(anna)).traits == {}  # type: ignore[union-attr]
    assert await graph.check() == []


async def test_data_stays_with_its_subject_when_the_evidence_is_unlinked(
    graph: IdentityGraph,
) -> None:
    await graph.ingest(
        [
            event(
                "email:a@x.com",
                "cookie:c1",
                traits={"tier": "gold"},
                interaction={"type": "purchase"},
                consent={"purpose": "marketing", "status": "granted"},
            ),
            event("cookie:c1", interaction={"type": "page_view"}),
        ]
    )
    await graph.unlink("email:a@x.com", "cookie:c1")
    person, cookie = await customer(graph, "email:a@x.com"), await customer(graph, "cookie:c1")
    assert person != cookie
    store = graph.store
    interactions = await store.interactions_of([person, cookie], limit=10)
    assert [i.type for i in interactions[person]] == ["purchase"]
    assert [i.type for i in interactions[cookie]] == ["page_view"]
    consents = await store.consents_of([person, cookie])
    assert [c.key for c in consents[person]] == ["email:a@x.com"]
    assert consents[cookie] == []
    traits = await store.traits_of([person, cookie])
    assert [t.key for t in traits[person]] == ["email:a@x.com"]
    assert traits[cookie] == []
    assert await graph.check() == []


# ---- stores written by earlier versions: found by check, fixed by repair ---------------

# Each event's identity keys; an earlier version attached its data to all of them.
OLD_EVENTS = {
    "h1": ["user_id:anna", "cookie:c-anna", "device:tablet-1"],
    "h2": ["user_id:bert", "cookie:c-bert", "device:tablet-1"],
    "p1": ["phone:+16502530000", "email:p@x.com"],  # subject: the email
    "t1": ["cookie:zz", "cookie:aa"],  # equal priority: repair keeps the lowest key
}
GRANT = {"purpose": "marketing", "status": "granted"}


async def ingest_the_old_way(graph: IdentityGraph) -> None:
    """Ingest, then attach every event's interaction and consent decision to all of the
    event's nodes, as an earlier version did, with the backend's own query language."""
    await graph.ingest(
        [
            *HOUSEHOLD,
            event(*OLD_EVENTS["p1"], event_id="p1", interaction={"type": "call"}, consent=GRANT),
            event(*OLD_EVENTS["t1"], event_id="t1", interaction={"type": "view"}, consent=GRANT),
        ]
    )
    for event_id, keys in OLD_EVENTS.items():
        await attach_to_all(graph.store, event_id, keys)


async def attach_to_all(store: Store, event_id: str, keys: list[str]) -> None:
    if isinstance(store, SqliteStore):
        db = sqlite3.connect(store.path)
        marks = ",".join("?" * len(keys))
        with db:
            db.execute(
                "INSERT OR IGNORE INTO performed (node, at, interaction) "
                "SELECT n.id, i.at, i.id FROM interactions i, nodes n "
                f"WHERE i.event_id = ? AND n.key IN ({marks})",
                (event_id, *keys),
            )
            db.execute(
                "INSERT INTO consents SELECT n.id, s.purpose, s.status, s.at, s.expires_at, "
                "s.source, s.event_id, s.recorded_at FROM consents s, nodes n "
                f"WHERE s.event_id = ? AND n.key IN ({marks}) AND n.id <> s.node",
                (event_id, *keys),
            )
        db.close()
        return
    from neo4j import AsyncGraphDatabase

    settings = neo4j_settings()
    async with AsyncGraphDatabase.driver(
        store.url, auth=(settings.user, settings.password)
    ) as driver:
        for query in (
            "MATCH (i:Interaction {eventId: $eventId}) UNWIND $keys AS key "
            "MATCH (n:Identity {key: key}) MERGE (n)-[p:PERFORMED]->(i) "
            "ON CREATE SET p.node = n.key, p.at = i.at",
            "MATCH (s:Identity)-[d:CONSENT {eventId: $eventId}]->(p:Purpose) "
            "UNWIND $keys AS key MATCH (n:Identity {key: key}) WHERE n <> s "
            "CREATE (n)-[:CONSENT {status: d.status, at: d.at, expiresAt: d.expiresAt, "
            "source: d.source, eventId: d.eventId, recordedAt: d.recordedAt, seq: d.seq}]->(p)",
        ):
            await driver.execute_query(
                query, {"eventId": event_id, "keys": keys}, database_=settings.database
            )


async def interactions_and_consents(
    graph: IdentityGraph, key: str
) -> tuple[list[tuple[str, tuple[str, ...]]], list[tuple[str, str]]]:
    cid = await customer(graph, key)
    interactions = (await graph.store.interactions_of([cid], limit=10))[cid]
    consents = (await graph.store.consents_of([cid]))[cid]
    return (
        sorted((i.type, i.keys) for i in interactions),
        sorted((c.key, c.status.value) for c in consents),
    )


async def test_check_reports_data_of_one_event_on_several_nodes_and_repair_fixes_it(
    graph: IdentityGraph,
) -> None:
    await ingest_the_old_way(graph)
    anna = await interactions_and_consents(graph, "user_id:anna")
    assert [t for t, _ in anna[0]] == ["login", "purchase"], "the leak, as it was"
    assert anna[1] == [("device:tablet-1", "granted")]
    problems = await graph.check()
    assert len(problems) == 7  # four interactions, three consent decisions
    assert (
        "interaction h2#interaction is attached to 3 identity nodes, not only on its event's "
        "subject (an earlier version's data: run `idgraph repair`)"
    ) in problems
    assert any(
        "consent decision of event p1 is recorded on 2 identity nodes" in p for p in problems
    )

    repaired = await graph.repair()
    assert (repaired.interactions, repaired.consents) == (6, 4)
    assert await graph.check() == []
    assert await interactions_and_consents(graph, "user_id:anna") == (
        [("login", ("user_id:anna",))],
        [],
    )
    assert await interactions_and_consents(graph, "user_id:bert") == (
        [("purchase", ("user_id:bert",))],
        [("user_id:bert", "granted")],
    )
    assert await interactions_and_consents(graph, "email:p@x.com") == (
        [("call", ("email:p@x.com",))],
        [("email:p@x.com", "granted")],
    )
    assert await interactions_and_consents(graph, "cookie:aa") == (
        [("view", ("cookie:aa",))],
        [("cookie:aa", "granted")],
    )
    again = await graph.repair()
    assert (again.interactions, again.consents) == (0, 0)


# ---- consent that cannot be outrun ----------------------------------------------------


async def marketing_now(graph: IdentityGraph, key: str) -> tuple[ConsentStatus | None, bool]:
    """The customer's current marketing decision, and whether it shows ``key``."""
    cid = await customer(graph, key)
    records = (await graph.store.consents_of([cid]))[cid]
    now = utcnow()
    current = current_decisions(records, now).get("marketing")
    marketing = graph.settings.purpose("marketing")
    assert marketing is not None
    shown = evaluate(records, marketing, now).allows_identifier(key)
    return (current.status if current else None), shown


async def test_a_withdrawal_outruns_a_grant_dated_in_the_future(graph: IdentityGraph) -> None:
    # Whether or not ingest refuses timestamps this far ahead, the withdrawal must win.
    await graph.ingest(
        [
            event(
                "email:a@x.com",
                at="2030-01-01T00:00:00Z",
                consent={"purpose": "marketing", "status": "granted"},
            )
        ]
    )
    outcome = await graph.set_consent(
        "email:a@x.com", "marketing", ConsentStatus.DENIED, source="support-desk"
    )
    assert outcome.outcome is Outcome.ACCEPTED
    assert await marketing_now(graph, "email:a@x.com") == (ConsentStatus.DENIED, False)


async def test_the_decision_recorded_later_wins_over_an_earlier_dated_one(
    graph: IdentityGraph,
) -> None:
    grant = {"purpose": "marketing", "status": "granted"}
    deny = {"purpose": "marketing", "status": "denied"}
    await graph.ingest([event("email:a@x.com", at="2026-01-02T00:00:00Z", consent=grant)])
    await graph.ingest([event("email:a@x.com", at="2026-01-01T00:00:00Z", consent=deny)])
    assert await marketing_now(graph, "email:a@x.com") == (ConsentStatus.DENIED, False)
    cid = await customer(graph, "email:a@x.com")
    history = (await graph.store.consents_of([cid]))[cid]
    assert [c.status for c in history] == [ConsentStatus.GRANTED, ConsentStatus.DENIED]
    assert [c.at.day for c in history] == [2, 1], "the time the source claimed is kept"


async def test_in_one_batch_the_later_line_wins(graph: IdentityGraph) -> None:
    await graph.ingest(
        [
            event(
                "email:a@x.com",
                at="2026-01-02T00:00:00Z",
                consent={"purpose": "marketing", "status": "denied"},
            ),
            event(
                "email:a@x.com",
                at="2026-01-01T00:00:00Z",
                consent={"purpose": "marketing", "status": "granted"},
            ),
        ]
    )
    assert await marketing_now(graph, "email:a@x.com") == (ConsentStatus.GRANTED, True)


# ---- property: every event's data shows in its subject's customer, and only there -----

KEYS = (
    [f"user_id:u{i}" for i in range(3)]
    + [f"email:e{i}@x.com" for i in range(3)]
    + [f"cookie:c{i}" for i in range(6)]
    + [f"device:d{i}" for i in range(2)]  # few devices: shared by several people
)
keys_of_event = st.lists(st.sampled_from(KEYS), min_size=1, max_size=4, unique=True).filter(
    lambda keys: sum(k.startswith("device:") for k in keys) <= 1
)
payload = st.fixed_dictionaries(
    {
        "keys": keys_of_event,
        "interaction": st.booleans(),
        "trait": st.booleans(),
        "consent": st.sampled_from([None, "granted", "denied"]),
        "day": st.integers(1, 28),  # the time a source claims: unrelated to the order
    }
)
operation = st.one_of(
    st.tuples(st.just("ingest"), st.lists(payload, min_size=1, max_size=3)),
    st.tuples(st.just("unlink"), st.sampled_from(KEYS), st.sampled_from(KEYS), st.booleans()),
    st.tuples(st.just("forget"), st.sampled_from(KEYS)),
)


@dataclass
class Sent:
    """An event the test sent, with its subject as the test computes it."""

    id: str
    subject: str
    data: dict[str, Any]
    applied: bool = False


def subject_of(keys: list[str]) -> str:
    """The event's highest-priority node; ties go to the first in event order, which is
    the identifiers as listed, then the device (the parser's order)."""
    ordered = [k for k in keys if not k.startswith("device:")] + [
        k for k in keys if k.startswith("device:")
    ]
    return min(ordered, key=lambda k: TIGHT.priority(k.split(":", 1)[0]))


def raw_event(sent_id: str, data: dict[str, Any]) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    if data["interaction"]:
        extra["interaction"] = {"type": "view"}
    if data["trait"]:
        extra["traits"] = {"last_event": sent_id}
    if data["consent"]:
        extra["consent"] = {"purpose": "marketing", "status": data["consent"]}
    return event(
        *data["keys"], at=f"2025-02-{data['day']:02d}T00:00:00Z", event_id=sent_id, **extra
    )


@pytest.mark.parametrize("backend", BACKENDS)
@property_settings
@given(operations=st.lists(operation, min_size=1, max_size=20))
def test_every_interaction_trait_and_consent_shows_only_with_its_subject(
    backend: str, operations: list[tuple[Any, ...]]
) -> None:
    async def body(graph: IdentityGraph) -> None:
        sent: dict[str, Sent] = {}
        erased: set[str] = set()
        for n, op in enumerate(operations):
            if op[0] == "ingest":
                batch = [Sent(f"ev{n}.{i}", subject_of(d["keys"]), d) for i, d in enumerate(op[1])]
                result = await graph.ingest([raw_event(s.id, s.data) for s in batch])
                for s, outcome in zip(batch, result.outcomes, strict=True):
                    s.applied = outcome.outcome is Outcome.ACCEPTED
                    sent[s.id] = s
            elif op[0] == "unlink":
                _, a, b, ban = op
                if a != b and len(await graph.store.customer_ids_of([a, b])) == 2:
                    await graph.unlink(a, b, ban=ban)
            else:
                known = await graph.store.customer_ids_of(KEYS)
                if op[1] in known:
                    await graph.forget(op[1])
                    erased |= {k for k, cid in known.items() if cid == known[op[1]]}
        await assert_attribution(graph, sent, erased)

    run_on_graph(backend, TIGHT, body)


async def assert_attribution(graph: IdentityGraph, sent: dict[str, Sent], erased: set[str]) -> None:
    store = graph.store
    ids = [c.id async for page in store.iter_customers() for c in page]
    members = {cid: {n.key for n in nodes} for cid, nodes in (await store.nodes_of(ids)).items()}
    interactions = await store.interactions_of(ids, limit=1000)
    traits, consents = await store.traits_of(ids), await store.consents_of(ids)
    shown_in: dict[tuple[str, str], list[str]] = {}
    for cid in ids:
        for what, event_id, keys in (
            *(("interaction", i.event_id, i.keys) for i in interactions[cid]),
            *(("trait", t.event_id, (t.key,)) for t in traits[cid]),
            *(("consent", c.event_id, (c.key,)) for c in consents[cid]),
        ):
            subject = sent[event_id].subject
            assert keys == (subject,), f"{what} of {event_id} on {keys}, its subject is {subject}"
            assert subject in members[cid]
            shown_in.setdefault((what, event_id), []).append(cid)
    assert await store.count_interactions(ids) == {cid: len(interactions[cid]) for cid in ids}
    for s in sent.values():
        expected = int(s.applied and s.subject not in erased)
        for what in ("interaction", "consent"):
            if s.data[what]:
                assert len(shown_in.get((what, s.id), [])) == expected, (what, s)
        if s.data["trait"]:  # a later report of the same trait on the node replaces it
            assert len(shown_in.get(("trait", s.id), [])) <= expected, s
    # each customer's current decision is the one recorded last among its subjects' events
    order = [s for s in sent.values() if s.applied and s.data["consent"]]
    for cid in ids:
        latest = [s for s in order if s.subject in members[cid]]
        current = current_decisions(consents[cid], utcnow()).get("marketing")
        assert (current.status.value if current else None) == (
            latest[-1].data["consent"] if latest else None
        )
    assert await graph.check() == []
