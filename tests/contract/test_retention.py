"""Retention (``idgraph.retention``) on every backend: what each policy counts and
deletes on a graph of known ages, that a purge keeps every invariant and what a replay
of a forgotten event does."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from idgraph import retention
from idgraph.config import RetentionSettings
from idgraph.domain.access import AuditEntry, Operation
from idgraph.domain.model import Outcome
from idgraph.domain.retention import ANONYMOUS_KINDS, Policy
from idgraph.domain.rules import Rules
from idgraph.service import IdentityGraph
from tests.conftest import run_on_graph
from tests.events import event

# Ingested twice: "old" batches at OLD (events dated the day before), "recent" ones at
# RECENT; the purge runs at NOW, and every policy keeps 30 days: the cut-off falls
# between the two.
OLD = datetime(2026, 1, 1, tzinfo=UTC)
RECENT = datetime(2026, 6, 1, tzinfo=UTC)
NOW = datetime(2026, 6, 10, tzinfo=UTC)
OLD_AT, RECENT_AT = "2025-12-31T12:00:00Z", "2026-05-31T12:00:00Z"
EXPIRING = {"purpose": "marketing", "status": "granted", "expiresAt": "2026-02-01T00:00:00Z"}
ALL = RetentionSettings(
    interactions_days=30,
    anonymous_customers_days=30,
    audit_days=30,
    event_ids_days=30,
    keep_expired_consents=False,
    batch_size=2,  # several batches per policy
)


@contextmanager
def clock(at: datetime) -> Iterator[None]:
    """idgraph's clock while ingesting: when it applied the events."""
    with mock.patch("idgraph.service.utcnow", return_value=at):
        yield


def page_view(*keys: str, at: str, **extra: Any) -> dict[str, Any]:
    return event(*keys, at=at, interaction={"type": "page_view"}, **extra)


async def known_ages(graph: IdentityGraph) -> None:
    with clock(OLD):
        await graph.ingest(
            [
                # An anonymous customer, inactive since: it goes whole.
                page_view(
                    "cookie:old", "device:d1", at=OLD_AT, traits={"theme": "dark"}, event_id="old"
                ),
                # An anonymous customer active lately (below): it stays.
                page_view("cookie:back", at=OLD_AT),
                # Known customers stay, however old.
                page_view("email:a@x.com", "cookie:c3", at=OLD_AT, event_id="purchase"),
                event("email:a@x.com", at=OLD_AT, consent=EXPIRING, event_id="a-grant"),
                event("email:b@x.com", at=OLD_AT, consent=EXPIRING, event_id="b-grant"),
            ]
        )
    with clock(RECENT):
        await graph.ingest(
            [
                page_view("cookie:back", at=RECENT_AT, event_id="back"),
                event("email:a@x.com", at=RECENT_AT, consent={**EXPIRING, "status": "denied"}),
                event("cookie:new", at=RECENT_AT),
            ]
        )
    await graph.store.append_audit(
        [
            AuditEntry(OLD, "cli", "operator", Operation.RESOLVE, None),
            AuditEntry(OLD, "cli", "operator", Operation.RESOLVE, None),
            AuditEntry(RECENT, "cli", "operator", Operation.RESOLVE, None),
        ]
    )


async def test_a_dry_run_counts_each_policy_and_deletes_nothing(graph: IdentityGraph) -> None:
    await known_ages(graph)
    before = await graph.store.counts()

    report = await retention.count(graph.store, ALL, NOW)

    assert report.counts == {
        Policy.ANONYMOUS_CUSTOMERS: 1,  # cookie:old with device:d1
        Policy.INTERACTIONS: 3,  # the three dated OLD_AT
        Policy.EXPIRED_CONSENTS: 1,  # a's expired grant, replaced by a's denial
        Policy.EVENT_IDS: 2,  # a-grant, b-grant: the others' interactions are stored
        Policy.AUDIT: 2,
    }
    assert not report.applied
    assert await graph.store.counts() == before


async def test_apply_deletes_what_each_policy_counts_and_keeps_the_rest(
    graph: IdentityGraph,
) -> None:
    await known_ages(graph)
    store = graph.store
    kept = await store.customer_ids_of(["email:a@x.com", "email:b@x.com", "cookie:back"])

    report = await retention.purge(store, ALL, NOW, actor="cli")

    assert report.applied
    # Event ids whose interaction went in this purge go too.
    assert report.counts == {
        Policy.ANONYMOUS_CUSTOMERS: 1,
        Policy.INTERACTIONS: 2,  # the third went with its anonymous customer
        Policy.EXPIRED_CONSENTS: 1,
        Policy.EVENT_IDS: 5,
        Policy.AUDIT: 2,
    }
    assert await graph.check() == []
    assert await store.customer_ids_of(["cookie:old", "device:d1"]) == {}
    assert await store.customer_ids_of(list(kept)) == kept
    assert await store.customer_ids_of(["cookie:new", "cookie:c3"]) != {}
    counts = await store.counts()
    assert counts["interactions"] == 1  # cookie:back's recent page view
    assert counts["events"] == 3  # the recent ones
    consents = await store.consents_of([kept["email:a@x.com"], kept["email:b@x.com"]])
    assert [c.status.value for c in consents[kept["email:a@x.com"]]] == ["denied"]
    assert len(consents[kept["email:b@x.com"]]) == 1  # expired, but b's latest
    entry, recent = await store.audit_log(customer_id=None, limit=10)
    assert recent.at == RECENT
    assert entry.operation == Operation.PURGE
    assert entry.detail == (
        "purge anonymous_customers=1 interactions=2 expired_consents=1 event_ids=5 audit=2"
    )
    # Nothing is left to delete.
    again = await retention.count(store, ALL, NOW)
    assert set(again.counts.values()) == {0}


async def test_a_replayed_event_whose_id_was_forgotten_is_applied_again(
    graph: IdentityGraph,
) -> None:
    await known_ages(graph)
    await retention.purge(graph.store, ALL, NOW, actor="cli")
    b = (await graph.store.customer_ids_of(["email:b@x.com"]))["email:b@x.com"]

    with clock(NOW):
        replay = await graph.ingest(
            [
                # Its id was forgotten: its consent decision is recorded again, as the
                # latest.
                event("email:b@x.com", at=OLD_AT, consent=EXPIRING, event_id="b-grant"),
                # Its customer and interaction were purged: both come back, as new.
                page_view("cookie:old", "device:d1", at=OLD_AT, event_id="old"),
            ]
        )
        # A recent event's id is still known: a duplicate.
        duplicate = await graph.ingest([page_view("cookie:back", at=RECENT_AT, event_id="back")])

    assert [o.outcome for o in replay.outcomes] == [Outcome.ACCEPTED, Outcome.ACCEPTED]
    assert replay.new_customers == 1
    assert len((await graph.store.consents_of([b]))[b]) == 2
    assert duplicate.outcomes[0].outcome is Outcome.DUPLICATE
    assert await graph.check() == []


async def test_a_purge_stopped_between_batches_leaves_a_consistent_store(
    graph: IdentityGraph,
) -> None:
    """Each batch commits on its own: stopped after the first (here by an error; a kill
    is the same to the store), what it deleted is gone, the invariants hold, and the
    next purge finishes the work."""
    await known_ages(graph)
    before = (await retention.count(graph.store, ALL, NOW)).counts
    first: list[int] = []

    class Stop(Exception):
        pass

    def stop(policy: Policy, deleted: int) -> None:
        first.append(deleted)
        raise Stop

    with pytest.raises(Stop):
        await retention.purge(graph.store, ALL, NOW, actor="cli", on_batch=stop)

    assert await graph.check() == []
    left = (await retention.count(graph.store, ALL, NOW)).counts
    assert left[Policy.ANONYMOUS_CUSTOMERS] == before[Policy.ANONYMOUS_CUSTOMERS] - first[0]
    assert left[Policy.AUDIT] == before[Policy.AUDIT]  # not reached
    await retention.purge(graph.store, ALL, NOW, actor="cli")
    assert await graph.check() == []
    assert await graph.store.customer_ids_of(["cookie:old"]) == {}
    assert set((await retention.count(graph.store, ALL, NOW)).counts.values()) == {0}


async def test_no_policy_set_purges_nothing(graph: IdentityGraph) -> None:
    await known_ages(graph)
    before = await graph.store.counts()

    report = await retention.purge(graph.store, RetentionSettings(), NOW, actor="cli")

    assert report.cutoffs == report.counts == {}
    assert await graph.store.counts() == before
    assert await graph.store.count_audit(customer_id=None) == 3  # no entry for nothing


# ---- property ----------------------------------------------------------------------------

KEYS = ["email:p@x.com", "email:q@x.com", "cookie:1", "cookie:2", "cookie:3", "device:d"]
BASE = datetime(2026, 1, 1, tzinfo=UTC)
EVENTS = st.lists(
    st.tuples(
        st.lists(st.sampled_from(KEYS), min_size=1, max_size=3, unique=True),
        st.integers(0, 60),  # day
        st.booleans(),  # with an interaction
    ),
    min_size=1,
    max_size=12,
)


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("neo4j", marks=pytest.mark.neo4j)])
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=EVENTS)
def test_a_purge_removes_only_whole_anonymous_customers_and_a_second_one_nothing(
    backend: str, events: list[tuple[list[str], int, bool]]
) -> None:
    async def body(graph: IdentityGraph) -> None:
        store = graph.store
        for i, (keys, day, interaction) in enumerate(events):
            at = BASE + timedelta(days=day)
            extra = {"interaction": {"type": "visit"}} if interaction else {}
            with clock(at + timedelta(hours=1)):
                await graph.ingest([event(*keys, at=at.isoformat(), event_id=f"e{i}", **extra)])
        before = {c.id: c async for page in store.iter_customers() for c in page}
        nodes = await store.nodes_of(list(before))

        report = await retention.purge(store, ALL, BASE + timedelta(days=61), actor="cli")

        after = {c.id: c async for page in store.iter_customers() for c in page}
        gone = set(before) - set(after)
        assert len(gone) == report.counts[Policy.ANONYMOUS_CUSTOMERS]
        assert all(n.kind in ANONYMOUS_KINDS for cid in gone for n in nodes[cid])
        assert await store.nodes_of(list(after)) == {cid: nodes[cid] for cid in after}
        assert await graph.check() == []
        again = await retention.purge(store, ALL, BASE + timedelta(days=61), actor="cli")
        assert set(again.counts.values()) == {0}

    run_on_graph(backend, Rules(), body)
