"""Backup and restore round trips over every backend (and across backends when
NEO4J_URI is set): same logical content, invariants intact, erased identifiers refused."""

from __future__ import annotations

import asyncio
import gzip
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from idgraph.backup import restore, write_backup
from idgraph.config import Settings
from idgraph.domain.model import Outcome
from idgraph.domain.segment import SavedSegment
from idgraph.errors import StoreError
from idgraph.service import IdentityGraph
from idgraph.store.port import Store
from idgraph.store.sqlite import SqliteStore
from idgraph.transfer import is_empty, read_store
from tests.backups import lines_of, rewritten, with_a_customer_twice
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


async def test_a_backup_taken_while_events_arrive_holds_one_moment(
    store: Store, tmp_path: Path
) -> None:
    """Events that merge customers and add nodes keep arriving while the backup reads;
    the file still holds one state: no node twice or missing, every name it uses
    defined, the totals of its header (read first) equal to its records."""
    graph = IdentityGraph(store, Settings())
    await graph.ingest([event(f"cookie:s{i}", f"device:s{i}", traits={"n": i}) for i in range(40)])
    writing = asyncio.Event()

    async def writer() -> None:
        for i in range(40):
            merging = event(
                f"cookie:s{i}",
                f"cookie:s{(7 * i + 3) % 40}",
                f"cookie:w{i}",
                interaction={"type": "page_view"},
            )
            await graph.ingest([merging])
            if i == 2:
                writing.set()

    task = asyncio.create_task(writer())
    await writing.wait()
    path = tmp_path / "during.backup"
    with path.open("wb") as out:
        await write_backup(store, out, batch_size=2)
    await task

    header, found = lines_of(path)
    customers = {c["id"]: c for c in found["customer"]}
    keys = [n["key"] for n in found["node"]]
    assert len(set(keys)) == len(keys)
    assert all(n["customer_id"] in customers for n in found["node"])
    assert all({k["a"], k["b"]} <= set(keys) for k in found["link"])
    assert all(set(i["keys"]) <= set(keys) for i in found["interaction"])
    assert sum(c["size"] for c in customers.values()) == len(keys)
    counts = header["counts"]
    assert (counts["customers"], counts["nodes"], counts["links"]) == (
        len(customers),
        len(keys),
        len(found["link"]),
    )
    copy = SqliteStore(tmp_path / "copy.db", erasure_key=ERASURE_KEY)
    try:
        await restore(path, copy)
        assert await IdentityGraph(copy, Settings()).check() == []
    finally:
        await copy.close()


async def test_a_restore_that_fails_part_way_leaves_nothing_of_the_backup(
    store: Store, tmp_path: Path
) -> None:
    """A file that passes every check but holds a record the store refuses: the restore
    fails at its last batch, and none of the batches before it stay in the target."""
    source = SqliteStore(tmp_path / "source.db", erasure_key=ERASURE_KEY)
    try:
        await fill(IdentityGraph(source, Settings()))
        good = tmp_path / "good.backup"
        with good.open("wb") as out:
            await write_backup(source, out)
    finally:
        await source.close()
    bad = rewritten(good, tmp_path / "bad.backup", with_a_customer_twice)

    with pytest.raises(StoreError):
        await restore(bad, store, batch_size=3)
    assert await is_empty(store)
    assert await store.counts() == dict.fromkeys(await store.counts(), 0)

    await restore(good, store, force=True, batch_size=3)
    again = tmp_path / "again.backup"
    with again.open("wb") as out:
        await write_backup(store, out)
    assert records(again) == records(good)
    assert await IdentityGraph(store, Settings()).check() == []


async def test_a_copy_reads_every_interaction_whatever_the_batch_size(store: Store) -> None:
    """Customers with fewer interactions than a batch are read together, one with more
    page by page: either way each customer's come newest first, none twice or missing."""
    graph = IdentityGraph(store, Settings())
    busy = [
        event("email:busy@x.com", interaction={"type": "view"}, at=f"2026-03-01T12:00:0{i}Z")
        for i in range(7)
    ]
    quiet = [event(f"email:q{i}@x.com", interaction={"type": "buy"}) for i in range(5)]
    await graph.ingest([*busy, *quiet, event("email:none@x.com")])
    customers = [c async for page in store.iter_customers() for c in page]
    ids = [c.id for c in customers]
    expected = await store.interactions_of(ids, limit=100)
    for batch_size in (1, 3, 100):
        found: dict[str, list[Any]] = {cid: [] for cid in ids}
        async for batch in read_store(store, batch_size, at=datetime(2026, 3, 5, tzinfo=UTC)):
            assert len(batch.interactions) <= batch_size
            for i in batch.interactions:
                found[next(cid for cid in ids if i in expected[cid])].append(i)
        assert found == expected, batch_size
