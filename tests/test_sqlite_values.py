"""What the embedded store binds for the values Python's sqlite3 would otherwise adapt
one by one (see the adapters registered in ``idgraph.store.sqlite``): None is stored as
NULL and a flag as the integer 0 or 1, never as text."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from idgraph.config import Settings
from idgraph.service import IdentityGraph
from idgraph.store.sqlite import SqliteStore
from tests.conftest import ERASURE_KEY
from tests.events import event


async def _ingest(path: Path) -> None:
    store = SqliteStore(path, erasure_key=ERASURE_KEY)
    graph = IdentityGraph(store, Settings())
    try:
        result = await graph.ingest(
            [
                event("email:a@example.com", "user_id:u1", "cookie:c1"),
                # user_id is limited to one per customer: this link is refused.
                event("email:a@example.com", "user_id:u2"),
                event(
                    "cookie:c1",
                    consent={"purpose": "marketing", "status": "granted"},
                    interaction={"type": "page_view"},
                ),
            ]
        )
        assert [o.outcome.value for o in result.outcomes] == ["accepted"] * 3
    finally:
        await store.close()


def test_nulls_and_flags_are_stored_as_sql_nulls_and_integers(tmp_path: Path) -> None:
    path = tmp_path / "graph.db"
    asyncio.run(_ingest(path))
    db = sqlite3.connect(path)
    try:
        links = db.execute(
            "SELECT accepted, typeof(accepted), rule, typeof(rule) FROM links ORDER BY accepted"
        ).fetchall()
        assert links == [
            (0, "integer", "limit:user_id", "text"),
            (1, "integer", None, "null"),
            (1, "integer", None, "null"),
        ]
        assert db.execute("SELECT DISTINCT typeof(attrs) FROM nodes").fetchall() == [("null",)]
        assert db.execute("SELECT typeof(expires_at) FROM consents").fetchall() == [("null",)]
        assert db.execute("SELECT typeof(channel) FROM interactions").fetchall() == [("null",)]
    finally:
        db.close()
