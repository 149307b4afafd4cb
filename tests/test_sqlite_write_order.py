"""The embedded store writes a batch's rows in primary-key order, not in event order (see
``SqliteStore._apply``). What it keeps must be what applying the events one by one
would keep: of one node's reports of a trait, the latest wins, and on equal times the
one that came last, in the batch and across batches."""

from __future__ import annotations

import asyncio
import sqlite3
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from idgraph.config import Settings
from idgraph.service import IdentityGraph
from idgraph.store.sqlite import SqliteStore
from tests.conftest import ERASURE_KEY
from tests.events import event

# (node, trait name, day, value): few of each, so that ties and repeats are common.
reports = st.lists(
    st.tuples(
        st.integers(0, 3), st.sampled_from(["city", "tier"]), st.integers(1, 3), st.integers(0, 99)
    ),
    min_size=1,
    max_size=30,
)


async def ingest(path: Path, batches: list[list[tuple[int, str, int, int]]]) -> None:
    store = SqliteStore(path, erasure_key=ERASURE_KEY)
    graph = IdentityGraph(store, Settings())
    try:
        for batch in batches:
            await graph.ingest(
                [
                    event(f"cookie:c{node}", at=f"2026-03-0{day}T00:00:00Z", traits={name: value})
                    for node, name, day, value in batch
                ]
            )
    finally:
        await store.close()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches=st.lists(reports, min_size=1, max_size=3))
def test_traits_written_in_key_order_keep_the_last_of_the_latest(
    batches: list[list[tuple[int, str, int, int]]],
) -> None:
    expected: dict[tuple[str, str], tuple[int, int]] = {}
    for batch in batches:
        for node, name, day, value in batch:
            key = (f"cookie:c{node}", name)
            if key not in expected or day >= expected[key][0]:
                expected[key] = (day, value)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "order.db"
        asyncio.run(ingest(path, batches))
        with sqlite3.connect(path) as db:
            rows = db.execute(
                "SELECT n.key, t.name, t.at, t.value FROM traits t JOIN nodes n ON n.id = t.node"
            ).fetchall()
    stored = {(key, name): (int(at[8:10]), int(value)) for key, name, at, value in rows}
    assert stored == expected
