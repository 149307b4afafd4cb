"""Stores written by earlier versions: an SQLite file of schema 1, whose events attached
their interaction and consent decision to every identity node of the event, is migrated
when it opens, reported by ``idgraph check`` and repaired by ``idgraph repair``."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import datetime
from pathlib import Path

import pytest

from idgraph.cli import main
from idgraph.config import Settings
from idgraph.service import IdentityGraph
from idgraph.store.sqlite import SCHEMA_VERSION, SqliteStore
from tests.conftest import ERASURE_KEY
from tests.contract.test_attribution import ingest_the_old_way


def write_old_store(path: Path) -> None:
    """A schema 1 file as an earlier version left it: every event's data on all its
    nodes, consent decisions without the time they were recorded, interactions' nodes
    without their times."""

    async def ingest() -> None:
        store = SqliteStore(path, erasure_key=ERASURE_KEY)
        await ingest_the_old_way(IdentityGraph(store, Settings()))
        await store.close()

    asyncio.run(ingest())
    db = sqlite3.connect(path)
    with db:
        db.execute("ALTER TABLE consents DROP COLUMN recorded_at")
        db.execute("ALTER TABLE performed RENAME TO performed_now")
        db.execute(
            "CREATE TABLE performed (node INTEGER NOT NULL, interaction INTEGER NOT NULL, "
            "PRIMARY KEY (node, interaction)) WITHOUT ROWID"
        )
        db.execute("INSERT INTO performed SELECT node, interaction FROM performed_now")
        db.execute("DROP TABLE performed_now")
        db.execute("CREATE INDEX performed_by_interaction ON performed (interaction)")
        db.execute("UPDATE meta SET value = '1' WHERE name = 'schema_version'")
    db.close()


@pytest.fixture
def old_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "old.db"
    write_old_store(path)
    monkeypatch.setenv("IDGRAPH_STORE", f"sqlite:///{path}")
    monkeypatch.chdir(tmp_path)
    return path


async def anna_and_bert(path: Path) -> dict[str, tuple[list[str], list[tuple[str, str]]]]:
    """Interaction types and (node, status) consent records of each person's customer."""
    store = SqliteStore(path, erasure_key=ERASURE_KEY)
    try:
        graph = IdentityGraph(store, Settings())
        seen = {}
        for person in ("anna", "bert"):
            cid = await graph.customer_of(f"user_id:{person}")
            assert cid is not None
            interactions = (await store.interactions_of([cid], limit=10))[cid]
            consents = (await store.consents_of([cid]))[cid]
            seen[person] = (
                sorted(i.type for i in interactions),
                [(c.key, c.status.value) for c in consents],
            )
        return seen
    finally:
        await store.close()


def test_the_old_store_shows_the_leak_until_check_finds_it_and_repair_fixes_it(
    old_store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert asyncio.run(anna_and_bert(old_store))["anna"] == (
        ["login", "purchase"],
        [("device:tablet-1", "granted")],
    ), "as an earlier version left it"

    assert main(["check"]) == 1
    report = capsys.readouterr().out
    assert "interaction h2#interaction is attached to 3 identity nodes" in report
    assert "consent decision of event h2 is recorded on 3 identity nodes" in report
    assert "run `idgraph repair`" in report

    assert main(["repair"]) == 0
    assert "dropped 6 interaction and 4 consent attachments" in capsys.readouterr().out
    assert main(["check"]) == 0
    assert capsys.readouterr().out.startswith("ok: every invariant holds")
    assert asyncio.run(anna_and_bert(old_store)) == {
        "anna": (["login"], []),
        "bert": (["purchase"], [("user_id:bert", "granted")]),
    }
    assert main(["repair"]) == 0
    assert "dropped 0 interaction and 0 consent attachments" in capsys.readouterr().out


def test_opening_a_schema_1_file_records_when_each_decision_was_recorded(
    old_store: Path,
) -> None:
    """A decision was recorded with its event: at the batch time kept for the event id."""

    async def recorded() -> dict[str, datetime]:
        store = SqliteStore(old_store, erasure_key=ERASURE_KEY)
        try:
            cids = list((await store.customer_ids_of(["user_id:bert", "email:p@x.com"])).values())
            return {
                c.event_id: c.recorded_at
                for records in (await store.consents_of(cids)).values()
                for c in records
            }
        finally:
            await store.close()

    found = asyncio.run(recorded())
    db = sqlite3.connect(old_store)
    batch_times = {
        e: datetime.fromisoformat(at) for e, at in db.execute("SELECT id, at FROM events")
    }
    assert db.execute("SELECT value FROM meta WHERE name = 'schema_version'").fetchone() == (
        SCHEMA_VERSION,
    )
    db.close()
    assert found == {"h2": batch_times["h2"], "p1": batch_times["p1"]}


def test_an_old_files_interactions_keep_their_nodes_and_are_keyed_by_time(
    old_store: Path,
) -> None:
    def attachments() -> list[tuple[str, str, str]]:
        db = sqlite3.connect(old_store)
        try:
            return db.execute(
                "SELECT n.key, i.ext_id, i.at FROM performed p JOIN nodes n ON n.id = p.node "
                "JOIN interactions i ON i.id = p.interaction ORDER BY 1, 2"
            ).fetchall()
        finally:
            db.close()

    before = attachments()
    asyncio.run(SqliteStore(old_store, erasure_key=ERASURE_KEY).close())
    assert attachments() == before
    db = sqlite3.connect(old_store)
    assert db.execute(
        "SELECT count(*) FROM performed p JOIN interactions i ON i.id = p.interaction "
        "WHERE p.at = i.at"
    ).fetchone() == (len(before),)
    db.close()
