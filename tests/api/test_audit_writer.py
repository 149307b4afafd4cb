"""The audit writer: queries answer without waiting for their audit write, requests
share write transactions, and no entry is lost, neither while the application runs (a
failed write is retried; the log read through the API holds every entry handed over)
nor when it stops."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from typing import Any

import pytest

from idgraph.api.audit import AuditWriter
from idgraph.config import ApiSettings, Settings
from idgraph.domain.access import AuditEntry
from idgraph.domain.model import utcnow
from idgraph.errors import StoreError
from idgraph.service import IdentityGraph
from idgraph.store.port import Store
from tests.api.conftest import open_api
from tests.api.test_loaders import CountingStore
from tests.events import event

REQUESTS = 12
LINGER = ApiSettings().audit_linger
RESOLVE = 'query($v: String!) { resolve(identifier: {kind: "email", value: $v}) { id } }'


AUDIT = "{ auditLog(first: 100) { edges { node { customerId } } } }"


def entry(n: int) -> AuditEntry:
    return AuditEntry(utcnow(), "tester", "support", "resolve", f"cus_{n}", "")


class GatedStore:
    """Forwards to a store; its audit writes wait until the gate opens, and the first
    ``failures`` of them fail. ``started`` holds the customer ids of each write begun;
    ``begun`` is set when the first begins."""

    def __init__(self, store: Store, failures: int = 0) -> None:
        self._store = store
        self.gate = asyncio.Event()
        self.failures = failures
        self.started: list[list[str | None]] = []
        self.begun = asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def append_audit(self, entries: Sequence[AuditEntry]) -> None:
        self.started.append([e.customer_id for e in entries])
        self.begun.set()
        await self.gate.wait()
        if self.failures:
            self.failures -= 1
            raise StoreError("the store is unavailable")
        await self._store.append_audit(entries)


async def test_concurrent_requests_are_each_audited(
    store: Store, settings: Settings, graph: IdentityGraph
) -> None:
    await graph.ingest([event(f"email:p{n}@x.com") for n in range(REQUESTS)])
    counting = CountingStore(store)
    async for api in open_api(settings, counting):  # type: ignore[arg-type]
        answers = await asyncio.gather(
            *(api.data(RESOLVE, {"v": f"p{n}@x.com"}) for n in range(REQUESTS)),
            api.data(RESOLVE, {"v": "nobody@x.com"}),
        )
    # stopping the application wrote what was pending: the log holds them all
    entries = await store.audit_log(customer_id=None, limit=100)
    found = {a["resolve"]["id"] for a in answers if a["resolve"]}
    assert len(found) == REQUESTS
    assert sorted(e.customer_id or "" for e in entries) == sorted(["", *found])
    assert {(e.actor, e.operation) for e in entries} == {("test-admin", "resolve")}
    assert 1 <= counting.calls["append_audit"] <= REQUESTS + 1


async def test_trails_waiting_together_share_one_write(store: Store) -> None:
    counting = CountingStore(store)
    writer = AuditWriter(counting, linger=LINGER)  # type: ignore[arg-type]
    writer.start()
    await asyncio.gather(*(writer.write([entry(n), entry(n + 100)]) for n in range(REQUESTS)))
    await writer.close()
    assert counting.calls["append_audit"] == 1
    assert len(await store.audit_log(customer_id=None, limit=100)) == 2 * REQUESTS


async def test_one_write_holds_at_most_max_batch_entries(store: Store) -> None:
    counting = CountingStore(store)
    writer = AuditWriter(counting, linger=LINGER, max_batch=5)  # type: ignore[arg-type]
    writer.start()
    await asyncio.gather(*(writer.write([entry(n), entry(n + 100)]) for n in range(REQUESTS)))
    await writer.close()
    assert counting.calls["append_audit"] == 5  # 24 entries, at most 5 per write
    assert len(await store.audit_log(customer_id=None, limit=100)) == 2 * REQUESTS


async def test_closing_writes_what_is_pending(store: Store) -> None:
    writer = AuditWriter(store, linger=LINGER)
    writer.start()
    waiting = [asyncio.ensure_future(writer.write([entry(n)])) for n in range(REQUESTS)]
    await asyncio.sleep(0)  # handed over, not yet written
    await writer.close()
    assert all(w.done() and w.exception() is None for w in waiting)
    assert len(await store.audit_log(customer_id=None, limit=100)) == REQUESTS
    await writer.write([entry(REQUESTS)])  # after close: written at once
    assert len(await store.audit_log(customer_id=None, limit=100)) == REQUESTS + 1


async def test_a_query_answers_before_its_audit_is_written(
    store: Store, settings: Settings, graph: IdentityGraph
) -> None:
    await graph.ingest([event("email:p0@x.com")])
    gated = GatedStore(store)
    async for api in open_api(settings, gated):  # type: ignore[arg-type]
        found = (await api.data(RESOLVE, {"v": "p0@x.com"}))["resolve"]
        assert await store.audit_log(customer_id=None, limit=10) == []  # still handed over
        gated.gate.set()
        log = (await api.data(AUDIT))["auditLog"]  # reads what was handed over
        assert [e["node"]["customerId"] for e in log["edges"]] == [found["id"]]


async def test_with_no_linger_a_query_answers_once_its_audit_is_written(
    store: Store, settings: Settings, graph: IdentityGraph
) -> None:
    await graph.ingest([event("email:p0@x.com")])
    settings = dataclasses.replace(
        settings, api=dataclasses.replace(settings.api, audit_linger=0.0)
    )
    gated = GatedStore(store)
    async for api in open_api(settings, gated):  # type: ignore[arg-type]
        answer = asyncio.ensure_future(api.data(RESOLVE, {"v": "p0@x.com"}))
        await asyncio.sleep(0.1)
        assert not answer.done()  # waits for its audit write
        gated.gate.set()
        found = (await answer)["resolve"]
        [written] = await store.audit_log(customer_id=None, limit=10)
        assert written.customer_id == found["id"]


async def test_a_mutation_answers_once_its_audit_is_written(
    store: Store, settings: Settings, graph: IdentityGraph
) -> None:
    await graph.ingest([event("email:p0@x.com"), event("email:p1@x.com")])
    gated = GatedStore(store)
    link = (
        'mutation { link(a: {kind: "email", value: "p0@x.com"}, '
        'b: {kind: "email", value: "p1@x.com"}, reason: "same") { userErrors { message } } }'
    )
    async for api in open_api(settings, gated):  # type: ignore[arg-type]
        answer = asyncio.ensure_future(api.data(link))
        for _ in range(100):  # the link is applied; its answer waits for the audit
            if await graph.customer_of("email:p0@x.com") == await graph.customer_of(
                "email:p1@x.com"
            ):
                break
            await asyncio.sleep(0.01)
        assert not answer.done()
        gated.gate.set()
        assert (await answer)["link"]["userErrors"] == []
        [written] = await store.audit_log(customer_id=None, limit=10)
        assert written.operation == "link"


async def test_a_failed_write_keeps_its_entries_for_the_next(store: Store) -> None:
    gated = GatedStore(store, failures=1)
    gated.gate.set()
    writer = AuditWriter(gated, linger=LINGER)  # type: ignore[arg-type]
    writer.start()
    await writer.write([entry(1), entry(2)])
    with pytest.raises(StoreError):  # those waiting for that write learn it failed
        await writer.flush()
    await writer.write([entry(3)])
    await writer.flush()  # the retry wrote all three, in order
    await writer.close()
    entries = await store.audit_log(customer_id=None, limit=10)
    assert [e.customer_id for e in reversed(entries)] == ["cus_1", "cus_2", "cus_3"]


async def test_a_full_backlog_makes_requests_wait_for_their_write(store: Store) -> None:
    gated = GatedStore(store)
    writer = AuditWriter(gated, linger=LINGER, max_backlog=3)  # type: ignore[arg-type]
    writer.start()
    await writer.write([entry(1), entry(2)])  # under the bound: handed over
    waiting = asyncio.ensure_future(writer.write([entry(3)]))
    await asyncio.sleep(0.01)
    assert not waiting.done()
    gated.gate.set()
    await waiting
    assert len(await store.audit_log(customer_id=None, limit=10)) == 3
    await writer.close()


async def test_entries_handed_over_during_a_write_linger_for_the_next(store: Store) -> None:
    """Under steady load a write is always under way: what arrives meanwhile must wait
    for others to join it, not be written at once (a write per request)."""
    gated = GatedStore(store)
    writer = AuditWriter(gated, linger=60.0)  # type: ignore[arg-type]
    writer.start()
    await writer.write([entry(1)])
    first = asyncio.ensure_future(writer.flush())  # someone waits: written at once
    await gated.begun.wait()
    await writer.write([entry(2)])  # handed over while the first write is under way
    gated.gate.set()
    await first
    await asyncio.sleep(0.05)
    assert gated.started == [["cus_1"]]  # entry 2 lingers for company
    await writer.close()
    assert gated.started == [["cus_1"], ["cus_2"]]
    assert len(await store.audit_log(customer_id=None, limit=10)) == 2


async def test_a_flush_asked_while_its_entries_are_written_returns_with_that_write(
    store: Store,
) -> None:
    """A reader of the audit log flushes first; if it asks while the write of what is
    pending is under way, that write is all it waits for. (It used to wait for the next
    entry anyone handed over: on an idle server, until its query timed out.)"""
    gated = GatedStore(store)
    writer = AuditWriter(gated, linger=0.01)  # type: ignore[arg-type]
    writer.start()
    await writer.write([entry(1)])
    await gated.begun.wait()  # the linger is over: entry 1 is being written
    flushed = asyncio.ensure_future(writer.flush())
    await asyncio.sleep(0)
    gated.gate.set()
    await asyncio.wait_for(flushed, timeout=5)
    assert len(await store.audit_log(customer_id=None, limit=10)) == 1
    await writer.close()
