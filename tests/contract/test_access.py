"""Erasure, API keys and the audit trail, on every backend."""

from __future__ import annotations

import pytest

from idgraph.domain.access import Role
from idgraph.domain.model import ConsentStatus, Outcome
from idgraph.errors import InvalidInput, NotFound
from idgraph.keys import KeyRing
from idgraph.service import IdentityGraph
from idgraph.store.erasure import ErasureHasher, ErasureRecord
from tests.conftest import ERASURE_KEY
from tests.events import event


async def test_forget_removes_the_whole_customer_and_refuses_replays(
    graph: IdentityGraph,
) -> None:
    alice = [
        event(
            "email:alice@x.com",
            "cookie:a1",
            traits={"name": "Alice"},
            interaction={"type": "purchase"},
            consent={"purpose": "marketing", "status": "granted"},
        ),
        event("cookie:a1", "device:phone-a", account={"system": "shop", "id": "7"}),
    ]
    bob = [event("email:bob@x.com", "cookie:b1", interaction={"type": "page_view"})]
    await graph.ingest(alice + bob)
    await graph.ingest([event("email:alice@x.com", "email:alice2@x.com")])
    await graph.ingest(
        [event("user_id:1", "email:alice@x.com"), event("user_id:2", "email:alice@x.com")]
    )  # one refused link
    before = await graph.store.counts()

    report = await graph.forget("email:ALICE@x.com")

    assert report.identity_nodes == {
        "account": 1,
        "cookie": 1,
        "device": 1,
        "email": 2,
        "user_id": 1,
    }
    assert (report.traits, report.interactions, report.consents) == (1, 1, 1)
    for key in ["email:alice@x.com", "cookie:a1", "device:phone-a", "account:shop:7"]:
        assert await graph.resolve(key) is None
    assert await graph.resolve("email:bob@x.com") is not None
    assert await graph.resolve("user_id:2") is not None, "another customer's node stays"
    assert await graph.store.rejected_links(limit=10) == []
    after = await graph.store.counts()
    assert after["nodes"] == before["nodes"] - 6
    assert after["interactions"] == before["interactions"] - 1
    assert await graph.check() == []

    replay = await graph.ingest([*alice, event("cookie:new", "cookie:a1")])
    assert [o.outcome for o in replay.outcomes] == [Outcome.REJECTED] * 3
    assert all("erased" in (o.reason or "") for o in replay.outcomes)
    assert await graph.resolve("cookie:new") is None
    with pytest.raises(NotFound):
        await graph.forget("email:alice@x.com")


async def test_forget_by_alias_id(graph: IdentityGraph) -> None:
    await graph.ingest([event("email:a@x.com")])
    await graph.ingest([event("email:b@x.com")])
    absorbed = await graph.customer_of("email:b@x.com")
    await graph.ingest([event("email:a@x.com", "email:b@x.com")])
    assert absorbed is not None
    report = await graph.forget(absorbed)
    assert report.aliases == 1
    assert (await graph.store.counts())["customers"] == 0
    assert await graph.check() == []


async def test_set_consent_records_history_on_the_node(graph: IdentityGraph) -> None:
    await graph.ingest([event("email:a@x.com")])
    outcome = await graph.set_consent(
        "email:A@x.com", "marketing", ConsentStatus.DENIED, source="preference-center"
    )
    assert outcome.outcome is Outcome.ACCEPTED
    cid = await graph.customer_of("email:a@x.com")
    assert cid is not None
    [record] = (await graph.store.consents_of([cid]))[cid]
    assert (record.key, record.status, record.source) == (
        "email:a@x.com",
        ConsentStatus.DENIED,
        "preference-center",
    )
    with pytest.raises(InvalidInput, match="unknown purpose 'spam'"):
        await graph.set_consent("email:a@x.com", "spam", ConsentStatus.GRANTED, source="x")


async def test_keys_are_stored_hashed_and_can_be_revoked(graph: IdentityGraph) -> None:
    ring = KeyRing(graph.store, graph.settings)
    key, secret = await ring.create("web-frontend", "reader", ["marketing", "support"])
    assert key.role is Role.READER
    stored = await ring.list()
    assert [k.name for k in stored] == ["web-frontend"]
    assert secret not in repr(stored)
    assert stored[0].secret_hash != secret
    assert (await ring.authenticate(secret)) == key
    assert await ring.authenticate(secret + "x") is None
    with pytest.raises(InvalidInput, match="exists already"):
        await ring.create("web-frontend", "reader", ["support"])
    with pytest.raises(InvalidInput, match="unknown role"):
        await ring.create("x", "superuser", ["support"])
    with pytest.raises(InvalidInput, match="unknown purpose"):
        await ring.create("y", "reader", ["everything"])
    await ring.revoke("web-frontend")
    assert await ring.authenticate(secret) is None
    with pytest.raises(NotFound):
        await ring.revoke("nobody")


async def test_audit_log_pages_newest_first(graph: IdentityGraph) -> None:
    for i in range(5):
        await graph.audit("key-a", "support", "read_profile", [f"cus_{i % 2}"])
    entries = await graph.store.audit_log(customer_id=None, limit=3)
    assert [e.customer_id for e in entries] == ["cus_0", "cus_1", "cus_0"]
    rest = await graph.store.audit_log(customer_id=None, limit=3, before=entries[-1].seq)
    assert len(rest) == 2
    only = await graph.store.audit_log(customer_id="cus_1", limit=10)
    assert [e.actor for e in only] == ["key-a", "key-a"]


async def test_erasure_record_and_event_ids_can_be_read_for_a_copy(graph: IdentityGraph) -> None:
    await graph.ingest(
        [event("email:a@x.com", event_id="e1"), event("email:b@x.com", event_id="e2")]
    )
    await graph.forget("email:a@x.com")
    record = await graph.store.erasures()
    assert record == ErasureRecord([ErasureHasher(ERASURE_KEY).hash("email:a@x.com")], None)
    ids = [i async for page in graph.store.iter_event_ids(batch_size=1) for i in page]
    assert ids == ["e1", "e2"]
