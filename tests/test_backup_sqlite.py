"""A backup of the embedded store is one snapshot, taken while writers carry on."""

from __future__ import annotations

import gzip
import json
import sqlite3
from pathlib import Path

from idgraph.backup import write_backup
from idgraph.config import Settings
from idgraph.service import IdentityGraph
from idgraph.store.sqlite import SqliteStore
from tests.conftest import ERASURE_KEY
from tests.events import event


async def test_backup_runs_beside_an_open_write_and_holds_only_what_was_committed(
    tmp_path: Path,
) -> None:
    store = SqliteStore(tmp_path / "idgraph.db", erasure_key=ERASURE_KEY)
    await IdentityGraph(store, Settings()).ingest([event("email:a@x.com", event_id="committed")])
    writer = sqlite3.connect(tmp_path / "idgraph.db", isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # a writer in the middle of its transaction
    writer.execute("INSERT INTO events VALUES ('uncommitted', '2026-03-01T00:00:00+00:00')")
    try:
        with (tmp_path / "b.backup").open("wb") as out:
            counts = await write_backup(store, out)
    finally:
        writer.execute("COMMIT")
        writer.close()
        await store.close()
    with gzip.open(tmp_path / "b.backup", "rt") as file:
        events = [r["record"] for r in map(json.loads, file) if r.get("type") == "event"]
    assert events == ["committed"]
    assert (counts["customer"], counts["node"]) == (1, 1)
    assert not list(tmp_path.glob(".idgraph-snapshot-*")), "the snapshot is deleted"
