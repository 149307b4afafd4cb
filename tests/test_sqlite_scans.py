"""The embedded store's reads that may visit a whole table (segments; the counts of
``GET /metrics`` at every scrape; the audit log's total) stop when a filter makes them
too costly, and do not hold up the event loop meanwhile: on a million events the counts
alone took ~70 ms, up to 0.2 s and more when the file was not in the OS's cache, in which
no other request was answered. Nor do reads of a customer too large to read quickly, such
as a page of the few interactions of one type among 100,000 (the newest of all are read at
once)."""

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
from idgraph.store import sqlite
from idgraph.store.port import InteractionPage, ProfileRead, SegmentQuery
from idgraph.store.sqlite import SqliteStore
from idgraph.store.sqlite_segments import budget
from tests.events import event

COUNTING = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000000) "

EVERYONE = SegmentQuery(parse_filter({"all": []}, []), (), utcnow(), None)

# Each read, and what it finds in a store of one event and one audit entry (customer "c-1").
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


async def test_a_large_customers_newest_page_is_read_at_once_and_a_long_walk_elsewhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = SqliteStore(tmp_path / "idgraph.db", erasure_key=b"k" * 32)
    graph = IdentityGraph(store, Settings())
    visits = [
        event(
            "email:big@x.com",
            at=f"2026-03-01T{minute // 60:02d}:{minute % 60:02d}:00Z",
            event_id=f"v-{minute}",
            interaction={"type": "purchase" if minute < 20 else "page_view"},
        )
        for minute in range(1_000)
    ]
    await graph.ingest([*visits, event("email:small@x.com", interaction={"type": "visit"})])
    newest = ProfileRead(interactions=InteractionPage(20))
    purchases = ProfileRead(interactions=InteractionPage(20, None, ("purchase",), None))
    monkeypatch.setattr(sqlite, "LOOP_STEPS", 10_000)  # a walk through ~1,000 is too long
    scanner_free = threading.Event()
    store._scanner.submit(scanner_free.wait)
    try:
        found = await asyncio.wait_for(store.profiles(["email:big@x.com"], newest), 10)
        assert [i.event_id for i in found["email:big@x.com"].interactions or []] == [
            f"v-{m}" for m in range(999, 979, -1)
        ], "read on the event loop: the newest 20 of 1,000 are the end of a key range"
        reading = asyncio.create_task(store.profiles(["email:big@x.com"], purchases))
        await asyncio.sleep(0)
        small = await store.profiles(["email:small@x.com"], newest)
        assert len(small["email:small@x.com"].interactions or []) == 1, "answered meanwhile"
        assert not reading.done(), "the oldest 20 purchases wait for the scan thread"
    finally:
        scanner_free.set()
    interactions = (await reading)["email:big@x.com"].interactions or []
    assert [i.event_id for i in interactions] == [f"v-{m}" for m in range(19, -1, -1)]
    await store.close()


async def test_every_connection_keeps_sorts_in_memory_and_overwrites_deletions(
    tmp_path: Path,
) -> None:
    """A scan's sort of a customer's 100,000 interactions wrote 25 MB of temporary files
    (personal data among them) from the scan connection, which had SQLite's defaults."""
    store = SqliteStore(tmp_path / "idgraph.db", erasure_key=b"k" * 32)
    await store.append_audit([AuditEntry(utcnow(), "k", "support", "resolve", "c-1")])
    await store.count_segment(EVERYONE)  # opens the scan connection
    connections = {
        "main": store._connection,
        "scan": store._scan_db,
        "audit": store._audit_db,
    }
    for name, db in connections.items():
        assert db is not None, name
        assert db.execute("PRAGMA temp_store").fetchone() == (2,), name  # MEMORY
        assert db.execute("PRAGMA secure_delete").fetchone() == (1,), name
    await store.close()
