"""Backup and restore round trips over every backend (and across backends when
NEO4J_URI is set): same logical content, invariants intact, erased identifiers refused."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from idgraph.backup import restore, write_backup
from idgraph.config import Settings
from idgraph.domain.model import Outcome
from idgraph.domain.segment import SavedSegment
from idgraph.service import IdentityGraph
from idgraph.store.port import Store
from idgraph.store.sqlite import SqliteStore
from tests.conftest import ERASURE_KEY, open_test_store
from tests.events import event

ERASED = event("email:gone@x.com", "cookie:gone", traits={"city": "Oslo"})


async def fill(graph: IdentityGraph) -> None:
    """Merges, a split with a ban, a refused link, an erasure, consents with expiry,
    interactions, traits and a saved segment."""
    await graph.ingest(
        [
            event("email:a@x.com", "cookie:c1", traits={"city": "Lima", "tier": 2}),
            event(
                "cookie:c1",
                "device:d1",
                interaction={"type": "page_view", "channel": "web", "properties": {"p": [1]}},
            ),
            event("email:b@x.com", "cookie:c2", at="2026-03-02T00:00:00Z"),
            event(
                "email:a@x.com",
                consent={
                    "purpose": "marketing",
                    "status": "granted",
                    "expiresAt": "2027-01-01T00:00:00Z",
                },
            ),
            event("email:a@x.com", consent={"purpose": "marketing", "status": "denied"}),
            event("user_id:1", "email:b@x.com"),
            event("user_id:2", "email:b@x.com"),  # refused: one user_id per customer
            ERASED,
        ]
    )
    await graph.ingest([event("cookie:c2", "cookie:c1", interaction={"type": "login"})])  # merge
    await graph.unlink("email:b@x.com", "cookie:c2", ban=True)  # split
    await graph.forget("email:gone@x.com")
    at = datetime(2026, 3, 5, tzinfo=UTC)
    await graph.store.put_segment(
        SavedSegment("lima", {"trait": {"name": "city", "eq": "Lima"}}, "", at)
    )


def records(path: Path) -> list[Any]:
    """The backup's records as a sorted list (each store lists them in its own order)."""
    with gzip.open(path, "rt") as file:
        lines = [json.loads(line) for line in file]
    return sorted(json.dumps(r, sort_keys=True) for r in lines[1:-1])


async def round_trip(source: Store, target: Store, tmp_path: Path, name: str) -> Path:
    first, second = tmp_path / f"{name}-1.backup", tmp_path / f"{name}-2.backup"
    with first.open("wb") as out:
        await write_backup(source, out, batch_size=3)
    await restore(first, target, batch_size=3)
    with second.open("wb") as out:
        await write_backup(target, out, batch_size=3)
    assert records(second) == records(first)
    kinds = {json.loads(r)["type"] for r in records(first)}
    assert kinds == {
        "customer",
        "node",
        "trait",
        "consent",
        "interaction",
        "link",
        "ban",
        "erased",
        "event",
        "segment",
    }
    return second


async def test_round_trip_keeps_everything(store: Store, tmp_path: Path) -> None:
    await fill(IdentityGraph(store, Settings()))
    target = await open_test_store("sqlite", tmp_path / "copy")
    try:
        await round_trip(store, target, tmp_path, "to-sqlite")
        copy = IdentityGraph(target, Settings())
        assert await copy.check() == []
        replay = await copy.ingest([ERASED])
        assert [o.outcome for o in replay.outcomes] == [Outcome.REJECTED]
        assert await copy.resolve("email:a@x.com") is not None
    finally:
        await target.close()


async def test_restore_into_the_other_kind(store: Store, tmp_path: Path) -> None:
    """Neo4j → SQLite → Neo4j (with NEO4J_URI); SQLite → SQLite → SQLite otherwise."""
    await fill(IdentityGraph(store, Settings()))
    middle = SqliteStore(tmp_path / "middle.db", erasure_key=ERASURE_KEY)
    try:
        backup = await round_trip(store, middle, tmp_path, "there")
        await store.clear()
        await restore(backup, store)
        again = tmp_path / "back.backup"
        with again.open("wb") as out:
            await write_backup(store, out)
        assert records(again) == records(backup)
        assert await IdentityGraph(store, Settings()).check() == []
    finally:
        await middle.close()
