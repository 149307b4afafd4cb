"""The embedded store's reads that may visit a whole table (segments; the counts of
``GET /metrics`` at every scrape; the audit log's total) stop when a filter makes them
too costly, and do not hold up the event loop meanwhile: on a million events the counts
alone took ~70 ms, up to 0.2 s and more when the file was not in the OS's cache, in which
no other request was answered."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from idgraph.config import Settings
from idgraph.domain.access import AuditEntry
from idgraph.domain.model import utcnow
from idgraph.domain.segment import parse_filter
from idgraph.errors import InvalidInput
from idgraph.service import IdentityGraph
from idgraph.store.port import SegmentQuery
from idgraph.store.sqlite import SqliteStore
from idgraph.store.sqlite_segments import budget
from tests.events import event

COUNTING = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000000) "

EVERYONE = SegmentQuery(parse_filter({"all": []}, []), (), utcnow(), None)

# Each read, and what it finds in a store of one event read once by customer "c-1".
SCANS: dict[str, tuple[Callable[[SqliteStore], Awaitable[Any]], Any]] = {
    "segment count": (lambda store: store.count_segment(EVERYONE), 1),
    "table counts": (
        lambda store: store.counts(),
        {
            "nodes": 1,
            "customers": 1,
            "links": 0,
            "rejected_links": 0,
            "aliases": 0,
            "interactions": 0,
            "events": 1,
        },
    ),
    "audit total": (lambda store: store.count_audit(customer_id=None), 1),
    "audit of a customer": (lambda store: store.count_audit(customer_id="c-1"), 1),
}


def test_a_read_over_its_budget_is_refused_and_the_connection_stays_usable() -> None:
    db = sqlite3.connect(":memory:")
    with pytest.raises(InvalidInput, match="narrow it"), budget(db, seconds=0):
        db.execute(COUNTING + "SELECT count(*) FROM n").fetchone()
    assert db.execute(COUNTING + "SELECT count(*) FROM n").fetchone() == (1_000_000,)


@pytest.mark.parametrize("name", SCANS)
async def test_a_scan_leaves_the_event_loop_serving_other_reads(tmp_path: Path, name: str) -> None:
    store = SqliteStore(tmp_path / "idgraph.db", erasure_key=b"k" * 32)
    graph = IdentityGraph(store, Settings())
    await graph.ingest([event("email:a@x.com")])
    await store.append_audit([AuditEntry(utcnow(), "k", "support", "resolve", "c-1")])
    scan, found = SCANS[name]
    scanner_free = threading.Event()
    store._scanner.submit(scanner_free.wait)  # a long scan holds the scan thread
    scanning = asyncio.create_task(scan(store))
    await asyncio.sleep(0)  # the task starts: on the event loop, it would end here
    try:
        assert await store.customer_ids_of(["email:a@x.com"]), "answered meanwhile"
        assert not scanning.done(), "scans queue for their own thread"
    finally:
        scanner_free.set()
    assert await scanning == found
    await store.close()
