"""The audit writer: concurrent requests share write transactions, and no entry is lost,
neither while the application runs nor when it stops."""

from __future__ import annotations

import asyncio

from idgraph.api.audit import AuditWriter
from idgraph.config import Settings
from idgraph.domain.access import AuditEntry
from idgraph.domain.model import utcnow
from idgraph.service import IdentityGraph
from idgraph.store.port import Store
from tests.api.conftest import open_api
from tests.api.test_loaders import CountingStore
from tests.events import event

REQUESTS = 12
RESOLVE = 'query($v: String!) { resolve(identifier: {kind: "email", value: $v}) { id } }'


def entry(n: int) -> AuditEntry:
    return AuditEntry(utcnow(), "tester", "support", "resolve", f"cus_{n}", "")


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
        # each response left with its entry written: the log holds them all already
        entries = await store.audit_log(customer_id=None, limit=100)
    found = {a["resolve"]["id"] for a in answers if a["resolve"]}
    assert len(found) == REQUESTS
    assert sorted(e.customer_id or "" for e in entries) == sorted(["", *found])
    assert {(e.actor, e.operation) for e in entries} == {("test-admin", "resolve")}
    assert 1 <= counting.calls["append_audit"] <= REQUESTS + 1


async def test_trails_waiting_together_share_one_write(store: Store) -> None:
    counting = CountingStore(store)
    writer = AuditWriter(counting)  # type: ignore[arg-type]
    writer.start()
    await asyncio.gather(*(writer.write([entry(n), entry(n + 100)]) for n in range(REQUESTS)))
    await writer.close()
    assert counting.calls["append_audit"] == 1
    assert len(await store.audit_log(customer_id=None, limit=100)) == 2 * REQUESTS


async def test_one_write_holds_at_most_max_batch_entries(store: Store) -> None:
    counting = CountingStore(store)
    writer = AuditWriter(counting, max_batch=5)  # type: ignore[arg-type]
    writer.start()
    await asyncio.gather(*(writer.write([entry(n), entry(n + 100)]) for n in range(REQUESTS)))
    await writer.close()
    assert counting.calls["append_audit"] == REQUESTS // 2  # two trails of two per write
    assert len(await store.audit_log(customer_id=None, limit=100)) == 2 * REQUESTS


async def test_closing_writes_what_is_pending(store: Store) -> None:
    writer = AuditWriter(store)
    writer.start()
    waiting = [asyncio.ensure_future(writer.write([entry(n)])) for n in range(REQUESTS)]
    await asyncio.sleep(0)  # handed over, not yet written
    await writer.close()
    assert all(w.done() and w.exception() is None for w in waiting)
    assert len(await store.audit_log(customer_id=None, limit=100)) == REQUESTS
    await writer.write([entry(REQUESTS)])  # after close: written at once
    assert len(await store.audit_log(customer_id=None, limit=100)) == REQUESTS + 1
