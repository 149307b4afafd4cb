"""The embedded store's segment reads stop when a filter makes them too costly, and do
not hold up the event loop meanwhile."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest

from idgraph.config import Settings
from idgraph.domain.model import utcnow
from idgraph.domain.segment import parse_filter
from idgraph.errors import InvalidInput
from idgraph.service import IdentityGraph
from idgraph.store.port import SegmentQuery
from idgraph.store.sqlite import SqliteStore
from idgraph.store.sqlite_segments import budget
from tests.events import event

COUNTING = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000000) "


def test_a_read_over_its_budget_is_refused_and_the_connection_stays_usable() -> None:
    db = sqlite3.connect(":memory:")
    with pytest.raises(InvalidInput, match="narrow it"), budget(db, seconds=0):
        db.execute(COUNTING + "SELECT count(*) FROM n").fetchone()
    assert db.execute(COUNTING + "SELECT count(*) FROM n").fetchone() == (1_000_000,)


async def test_a_segment_scan_leaves_the_event_loop_serving_other_reads(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "idgraph.db", erasure_key=b"k" * 32)
    graph = IdentityGraph(store, Settings())
    await graph.ingest([event("email:a@x.com")])
    everyone = SegmentQuery(parse_filter({"all": []}, []), (), utcnow(), None)
    scanner_free = threading.Event()
    store._scanner.submit(scanner_free.wait)  # a long scan holds the scan thread
    counting = asyncio.create_task(store.count_segment(everyone))
    try:
        assert await store.customer_ids_of(["email:a@x.com"]), "answered meanwhile"
        assert not counting.done(), "scans queue for their own thread"
    finally:
        scanner_free.set()
    assert await counting == 1
    await store.close()
