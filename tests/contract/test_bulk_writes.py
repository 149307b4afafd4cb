"""``Store.bulk_writes``: inside, a batch's commit may finish in the background (SQLite),
yet every later call sees the batch, and leaving waits for the last commit."""

from __future__ import annotations

from pathlib import Path

import pytest

from idgraph.config import Settings
from idgraph.domain.model import Outcome
from idgraph.errors import StoreError
from idgraph.service import IdentityGraph
from idgraph.store.sqlite import SqliteStore
from tests.conftest import ERASURE_KEY
from tests.events import event


async def test_each_batch_sees_the_one_before_and_all_are_kept(graph: IdentityGraph) -> None:
    with graph.store.bulk_writes():
        for n in range(20):  # each batch links the next cookie to the one before
            result = await graph.ingest([event(f"cookie:c{n}", f"cookie:c{n + 1}")])
            assert result.count(Outcome.ACCEPTED) == 1
        inside = await graph.customer_of("cookie:c0")
        assert inside is not None
    assert {await graph.customer_of(f"cookie:c{n}") for n in range(21)} == {inside}
    assert await graph.check() == []


async def test_a_commit_that_fails_in_the_background_is_reported_and_applies_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = SqliteStore(tmp_path / "graph.db", erasure_key=ERASURE_KEY)
    graph = IdentityGraph(store, Settings())
    commit = SqliteStore._commit

    def fails(self: SqliteStore, db: object) -> None:
        self._connection.execute("ROLLBACK")
        raise StoreError("commit failed: disk I/O error")

    try:
        with store.bulk_writes():
            await graph.ingest([event("email:a@x.com", "cookie:c1")])
            monkeypatch.setattr(SqliteStore, "_commit", fails)
            await graph.ingest([event("cookie:c1", "phone:+16505550100")])  # returns: its
            monkeypatch.setattr(SqliteStore, "_commit", commit)  # commit fails meanwhile
            with pytest.raises(StoreError, match="disk I/O error"):
                await graph.customer_of("email:a@x.com")  # the next call says so
            assert await graph.customer_of("phone:+16505550100") is None
            # The write cache forgot the failed batch: sent again, it is applied.
            again = await graph.ingest([event("cookie:c1", "phone:+16505550100")])
            assert again.count(Outcome.ACCEPTED) == 1
        assert await graph.customer_of("phone:+16505550100") == await graph.customer_of(
            "email:a@x.com"
        )
        assert await graph.check() == []
    finally:
        await store.close()
