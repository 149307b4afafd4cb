"""Operating a Neo4j store, against a real server (skipped without ``NEO4J_URI``; the
database is wiped): the stored schema version, a restore that did not complete, and a
backup's view that writers wait for while reads go on."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from idgraph.backup import restore, write_backup
from idgraph.cli import main
from idgraph.config import Settings
from idgraph.errors import ConfigError, StoreError
from idgraph.service import IdentityGraph
from idgraph.store.neo4j import SCHEMA_VERSION, Neo4jStore
from idgraph.store.sqlite import SqliteStore
from tests.backups import rewritten, with_a_customer_twice
from tests.conftest import ERASURE_KEY, neo4j_settings
from tests.events import event
from tests.neo4j.helpers import neo4j_uri, run_cypher

pytestmark = pytest.mark.neo4j
VERSION = "MATCH (m:IdgraphMeta {name: 'schema_version'}) RETURN m.value AS value"


async def reopen(**flags: bool) -> Neo4jStore:
    return await Neo4jStore.open(neo4j_uri(), neo4j_settings(), erasure_key=ERASURE_KEY, **flags)


async def test_a_store_records_its_schema_version(neo4j_store: Neo4jStore) -> None:
    assert await run_cypher(VERSION) == [{"value": SCHEMA_VERSION}]


async def test_a_store_written_before_versions_were_kept_is_migrated(
    neo4j_store: Neo4jStore,
) -> None:
    """Version 1, as earlier idgraphs left it: no version, a per-label key constraint,
    trait dates without their instant, and version 1's record of its backfill."""
    await IdentityGraph(neo4j_store, Settings()).ingest(
        [event("email:a@x.com", traits={"joined": "2026-01-01T05:00:00+05:00"})]
    )
    await run_cypher("MATCH (m:IdgraphMeta {name: 'schema_version'}) DELETE m")
    await run_cypher("CREATE (:IdgraphMeta {name: 'trait_instants', value: true})")
    await run_cypher("MATCH (t:Trait) REMOVE t.instant")
    await run_cypher(
        "CREATE CONSTRAINT identifier_key IF NOT EXISTS FOR (n:Identifier) REQUIRE n.key IS UNIQUE"
    )
    migrated = await reopen()
    await migrated.close()
    assert await run_cypher(VERSION) == [{"value": SCHEMA_VERSION}]
    names = {r["name"] for r in await run_cypher("SHOW CONSTRAINTS YIELD name RETURN name")}
    assert "identifier_key" not in names
    assert await run_cypher("MATCH (m:IdgraphMeta {name: 'trait_instants'}) RETURN m") == []
    instants = await run_cypher("MATCH (t:Trait) RETURN toString(t.instant) AS at")
    assert instants == [{"at": "2026-01-01T00:00:00Z"}]


async def test_a_store_of_version_2_gets_the_performed_index_properties(
    neo4j_store: Neo4jStore,
) -> None:
    """Version 2's PERFORMED had no properties: the migration gives each its identity's
    key and its interaction's time, which the pages of interactions read."""
    graph = IdentityGraph(neo4j_store, Settings())
    await graph.ingest(
        [
            event(
                "email:a@x.com",
                "cookie:c1" if i % 2 else "cookie:c2",
                at=f"2026-03-01T12:00:{i:02d}Z",
                interaction={"type": "view"},
            )
            for i in range(30)
        ]
    )
    await run_cypher("MATCH ()-[p:PERFORMED]->() REMOVE p.node, p.at")
    await run_cypher("MATCH (m:IdgraphMeta {name: 'schema_version'}) SET m.value = 2")
    migrated = await reopen()
    try:
        assert await run_cypher(VERSION) == [{"value": SCHEMA_VERSION}]
        stale = await run_cypher(
            "MATCH (n:Identity)-[p:PERFORMED]->(i:Interaction) "
            "WHERE p.node IS NULL OR p.node <> n.key OR p.at <> i.at RETURN count(*) AS n"
        )
        assert stale == [{"n": 0}]
        cid = (await migrated.customer_ids_of(["email:a@x.com"]))["email:a@x.com"]
        page = (await migrated.interactions_of([cid], limit=5))[cid]
        assert [i.at.second for i in page] == [29, 28, 27, 26, 25]
    finally:
        await migrated.close()


async def test_a_store_written_by_a_newer_idgraph_is_refused_untouched(
    neo4j_store: Neo4jStore,
) -> None:
    newer = SCHEMA_VERSION + 1
    await run_cypher("MATCH (m:IdgraphMeta {name: 'schema_version'}) SET m.value = $v", v=newer)
    await run_cypher("DROP CONSTRAINT segment_name")  # as if the newer one had dropped it
    with pytest.raises(ConfigError, match=f"schema version {newer}.* up to {SCHEMA_VERSION}"):
        await reopen()
    assert await run_cypher(VERSION) == [{"value": newer}]
    names = {r["name"] for r in await run_cypher("SHOW CONSTRAINTS YIELD name RETURN name")}
    assert "segment_name" not in names


async def test_a_store_whose_restore_failed_opens_only_to_restore_again(
    neo4j_store: Neo4jStore,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    source = SqliteStore(tmp_path / "source.db", erasure_key=ERASURE_KEY)
    await IdentityGraph(source, Settings()).ingest(
        [event(f"email:p{i}@x.com", f"cookie:p{i}", traits={"n": i}) for i in range(20)]
    )
    good = tmp_path / "good.backup"
    with good.open("wb") as out:
        await write_backup(source, out)
    await source.close()
    bad = rewritten(good, tmp_path / "bad.backup", with_a_customer_twice)

    with pytest.raises(StoreError, match="what it had written is deleted"):
        await restore(bad, neo4j_store, batch_size=4)
    assert (await neo4j_store.counts())["nodes"] == 0
    with pytest.raises(StoreError, match="incomplete restore"):
        await reopen()

    settings = neo4j_settings()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("IDGRAPH_STORE", neo4j_uri())
    monkeypatch.setenv("IDGRAPH_NEO4J_USER", settings.user)
    monkeypatch.setenv("IDGRAPH_NEO4J_PASSWORD", settings.password)
    monkeypatch.setenv("IDGRAPH_NEO4J_DATABASE", settings.database)
    monkeypatch.setenv("IDGRAPH_SECRET", "operations-test-secret-0123456789abcdef")
    Path("one.jsonl").write_text(json.dumps(event("email:new@x.com")) + "\n")
    capsys.readouterr()

    async def cli(*argv: str) -> int:
        return await asyncio.to_thread(main, list(argv))  # main runs its own event loop

    for refused in (["serve"], ["ingest", "one.jsonl"], ["backup", "b.backup"]):
        assert await cli(*refused) == 2
        assert "incomplete restore" in capsys.readouterr().err
    assert await cli("restore", "--force", str(good), "--no-progress") == 0
    assert await cli("check") == 0
    opened = await reopen()
    assert (await opened.counts())["nodes"] == 40
    await opened.close()


async def test_a_backup_s_view_makes_writers_wait_and_lets_reads_go_on(
    neo4j_store: Neo4jStore,
) -> None:
    graph = IdentityGraph(neo4j_store, Settings())
    await graph.ingest([event("email:a@x.com", "cookie:a")])
    async with neo4j_store.consistent_view() as view:
        writer = asyncio.create_task(graph.ingest([event("cookie:a", "device:d")]))
        assert await neo4j_store.customer_ids_of(["email:a@x.com"])  # a read goes on
        assert (await view.counts())["nodes"] == 2
        assert not writer.done()  # the writers' lock is held until the view closes
    await writer
    assert (await neo4j_store.counts())["nodes"] == 3
