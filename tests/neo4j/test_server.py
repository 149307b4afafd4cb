"""Neo4j-only behaviour, against a real server (skipped without ``NEO4J_URI``): the schema,
the analyst queries, concurrent writers, ``export --to`` and the CLI. The database is wiped.
The store contract itself runs on Neo4j through the ``store`` fixture in tests/contract."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import random
import sys
from pathlib import Path
from typing import Any

import pytest

from idgraph.cli import main
from idgraph.config import Settings
from idgraph.demo import write_demo_file
from idgraph.domain.consent import DEFAULT_PURPOSES
from idgraph.domain.model import Outcome, utcnow
from idgraph.domain.segment import parse_filter
from idgraph.errors import ConfigError
from idgraph.jsonl import ingest_file
from idgraph.service import IdentityGraph
from idgraph.store.erasure import ErasureHasher, ErasureRecord
from idgraph.store.neo4j import Neo4jStore
from idgraph.store.port import SegmentQuery
from idgraph.store.sqlite import SqliteStore
from idgraph.transfer import export_to_neo4j
from tests.conftest import ERASURE_KEY, neo4j_settings
from tests.events import event
from tests.neo4j.helpers import analyst_queries, neo4j_uri, partition, run_cypher

pytestmark = pytest.mark.neo4j
OTHER_KEY = b"another-erasure-key".ljust(32, b"x")


async def test_init_schema_is_idempotent(neo4j_store: Neo4jStore) -> None:
    show = "SHOW CONSTRAINTS YIELD name, type RETURN name, type ORDER BY name"
    before = await run_cypher(show)
    indexes = await run_cypher("SHOW INDEXES YIELD name RETURN name ORDER BY name")
    await neo4j_store.init_schema()
    await neo4j_store.init_schema()
    assert await run_cypher(show) == before
    assert await run_cypher("SHOW INDEXES YIELD name RETURN name ORDER BY name") == indexes
    names = {c["name"] for c in before}
    assert {"identity_key", "customer_id", "event_id", "interaction_id"} <= names
    assert {c["type"] for c in before} == {"UNIQUENESS"}


async def test_opening_drops_the_per_label_key_constraints_of_earlier_versions(
    neo4j_store: Neo4jStore,
) -> None:
    await run_cypher("MATCH (m:IdgraphMeta {name: 'schema_version'}) DELETE m")  # version 1
    for name, label in [("identifier_key", "Identifier"), ("account_key", "Account")]:
        await run_cypher(
            f"CREATE CONSTRAINT {name} IF NOT EXISTS FOR (n:{label}) REQUIRE n.key IS UNIQUE"
        )
    reopened = await Neo4jStore.open(neo4j_uri(), neo4j_settings(), erasure_key=ERASURE_KEY)
    await reopened.close()
    names = {r["name"] for r in await run_cypher("SHOW CONSTRAINTS YIELD name RETURN name")}
    assert "identity_key" in names
    assert names.isdisjoint({"identifier_key", "device_key", "account_key"})


async def test_times_come_back_to_the_microsecond_as_on_sqlite(
    neo4j_store: Neo4jStore, tmp_path: Path
) -> None:
    """Times travel to Neo4j as text: each must come back the same instant, microseconds
    and all, whatever offset the event was written in."""
    events = [
        event(
            "email:t@x.com",
            "cookie:t1",
            at="2026-03-04T05:06:07.123456+02:00",
            traits={"tier": "gold"},
            interaction={"type": "login"},
            consent={
                "purpose": "marketing",
                "status": "granted",
                "expiresAt": "2027-01-01T00:00:00.000001Z",
            },
        ),
        event("email:t2@x.com", "device:t9", at="2026-03-04T06:00:00.5-05:00"),
        event("cookie:t1", "device:t9", at="2026-03-05T00:00:00.000007Z"),  # a merge
    ]
    sqlite = SqliteStore(tmp_path / "same.db", erasure_key=ERASURE_KEY)

    async def times(store: Any) -> tuple[Any, ...]:
        graph = IdentityGraph(store, Settings())
        await graph.ingest(events)
        cid = await graph.customer_of("email:t@x.com")
        assert cid is not None
        component = await store.component(cid)
        return (
            sorted(n.created_at for n in component.nodes),
            sorted(k.at for k in component.links),
            [t.at for t in (await store.traits_of([cid]))[cid]],
            [(c.at, c.expires_at) for c in (await store.consents_of([cid]))[cid]],
            [i.at for i in (await store.interactions_of([cid], limit=10))[cid]],
        )

    found, expected = await times(neo4j_store), await times(sqlite)
    await sqlite.close()
    assert found == expected
    assert found[1][-1].microsecond == 7  # the merging link


async def test_every_analyst_query_runs(neo4j_store: Neo4jStore, tmp_path: Path) -> None:
    graph = IdentityGraph(neo4j_store, Settings())
    path = tmp_path / "demo.jsonl"
    write_demo_file(path, events=400, people=40)
    await ingest_file(graph, path, 100)
    await graph.ingest(
        [
            event("user_id:ann", "device:tablet"),
            event("user_id:bob", "device:tablet"),
            event("email:ann@x.com", consent={"purpose": "marketing", "status": "granted"}),
            event("email:ann@x.com", "user_id:ann", interaction={"type": "login"}),
        ]
    )
    # A London number: the demo's phones are all +1, so its limits cannot refuse this merge.
    await graph.ingest([event("email:ann2@x.com", "phone:+442079460999")])
    await graph.ingest([event("email:ann@x.com", "phone:+442079460999")])  # a merge
    await graph.unlink("email:ann@x.com", "phone:+442079460999")  # a split
    own = ["ann", "bob", "tablet", "ann@x.com", "ann2@x.com", "+442079460999"]
    assert [v for v in own if json.dumps(v) in path.read_text()] == [], "not the demo's"
    customer = await graph.customer_of("email:ann@x.com")
    assert customer is not None
    params = {
        "key": "email:ann@x.com",
        "customerId": customer,
        "purpose": "marketing",
        "rule": "limit:user_id",
        "minCustomers": 2,
    }
    answers = {}
    for query in analyst_queries():
        wanted = {name: params[name] for name in query.parameters}
        answers[query.comment] = await run_cypher(query.text, **wanted)
    empty = [comment for comment, rows in answers.items() if not rows]
    assert empty == [], "every query finds something in this graph"


def overlapping_events(people: int = 12, chain: int = 8) -> list[dict[str, Any]]:
    """Chains of cookies per person, joined in pairs by a phone: many merges, no rule
    refusal, so the final customers do not depend on the order of the events."""
    events = []
    for p in range(people):
        events += [
            event(f"cookie:p{p}-{j}", f"cookie:p{p}-{j + 1}", event_id=f"p{p}-{j}")
            for j in range(chain)
        ]
        events.append(event(f"email:p{p}@x.com", f"cookie:p{p}-{chain}", event_id=f"p{p}-mail"))
    for p in range(0, people, 2):
        events.append(
            event(
                f"phone:+1650253{p:04d}",
                f"cookie:p{p}-0",
                f"cookie:p{p + 1}-{chain // 2}",
                event_id=f"pair-{p}",
            )
        )
    return events


async def test_concurrent_ingest_processes_end_like_one_sequential_ingest(
    neo4j_store: Neo4jStore, tmp_path: Path
) -> None:
    events = overlapping_events()
    rng = random.Random(5)
    halves: list[list[dict[str, Any]]] = [[], []]
    for i, e in enumerate(events):
        halves[i % 2].append(e)
        if i % 4 == 0:  # the same event sent by both processes
            halves[1 - i % 2].append(e)
    config = tmp_path / "idgraph.toml"
    config.write_text("batch_size = 3\n")
    settings = neo4j_settings()
    env = {
        **os.environ,
        "IDGRAPH_NEO4J_USER": settings.user,
        "IDGRAPH_NEO4J_PASSWORD": settings.password,
        "IDGRAPH_NEO4J_DATABASE": settings.database,
    }
    processes = []
    for n, half in enumerate(halves):
        rng.shuffle(half)
        path = tmp_path / f"half-{n}.jsonl"
        path.write_text("".join(json.dumps(e) + "\n" for e in half))
        processes.append(
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "idgraph.cli",
                "--store",
                neo4j_uri(),
                "--config",
                str(config),
                "ingest",
                str(path),
                "--no-progress",
                env=env,
                stderr=asyncio.subprocess.PIPE,
            )
        )
    for process in processes:
        _, err = await process.communicate()
        assert process.returncode == 0, err.decode()

    sequential = SqliteStore(tmp_path / "sequential.db", erasure_key=ERASURE_KEY)
    await IdentityGraph(sequential, Settings()).ingest(events)
    expected = partition([n async for page in sequential.iter_nodes() for n in page])
    found = partition([n async for page in neo4j_store.iter_nodes() for n in page])
    assert found == expected
    assert len(found) == 6
    assert await IdentityGraph(neo4j_store, Settings()).check() == []
    counts = await neo4j_store.counts()
    assert counts["events"] == len(events)
    assert counts["nodes"] == sum(len(c) for c in expected)
    await sequential.close()


async def test_export_to_copies_an_embedded_store(neo4j_store: Neo4jStore, tmp_path: Path) -> None:
    source = SqliteStore(tmp_path / "source.db", erasure_key=ERASURE_KEY)
    graph = IdentityGraph(source, Settings())
    result = await graph.ingest(
        [
            event("email:a@x.com", "cookie:c1", traits={"name": "Ann"}),
            event("cookie:c1", "device:d1", device={"id": "d1", "os": "ios", "model": "iPad"}),
            event("email:a@x.com", "account:shop:42", interaction={"type": "purchase"}),
            event("email:a@x.com", consent={"purpose": "marketing", "status": "granted"}),
            event("user_id:ann", "device:tablet"),
            event("user_id:bob", "device:tablet", "cookie:bob"),
        ]
    )
    assert result.count(Outcome.ACCEPTED) == 6
    await graph.ingest([event("phone:+16502530000", "cookie:p1")])
    await graph.ingest([event("phone:+16502530000", "email:a@x.com")])
    await graph.unlink("email:a@x.com", "account:shop:42", ban=True)
    erased = event("email:gone@x.com", "cookie:gone")
    await graph.ingest([erased])
    await graph.forget("email:gone@x.com")
    counts = await source.counts()

    progress: list[int] = []
    copied = await export_to_neo4j(
        source,
        neo4j_uri(),
        neo4j_settings(),
        erasure_key=ERASURE_KEY,
        replace=True,
        batch_size=2,
        progress=progress.append,
    )
    assert sum(progress) == counts["customers"] + counts["nodes"] + counts["links"]
    assert copied["customers"] == counts["customers"]

    async def everything(store: Any) -> tuple[Any, ...]:
        """The whole graph, in an order that does not depend on the backend."""
        nodes = sorted([n async for page in store.iter_nodes() for n in page], key=lambda n: n.key)
        links = sorted(
            [k async for page in store.iter_links() for k in page], key=lambda k: (k.a, k.b)
        )
        customers = sorted(
            [c async for page in store.iter_customers() for c in page], key=lambda c: c.id
        )
        ids = [c.id for c in customers]
        return (
            nodes,
            links,
            customers,
            await store.aliases(),
            await store.bans(),
            await store.traits_of(ids),
            await store.consents_of(ids),
            await store.interactions_of(ids, limit=10),
        )

    assert await everything(neo4j_store) == await everything(source)
    assert await IdentityGraph(neo4j_store, Settings()).check() == []
    assert (copied["erased"], copied["events"]) == (2, counts["events"])
    assert await neo4j_store.erasures() == await source.erasures()
    copy = await Neo4jStore.open(neo4j_uri(), neo4j_settings(), erasure_key=ERASURE_KEY)
    replay = await IdentityGraph(copy, Settings()).ingest(
        [event("email:a@x.com", event_id=result.outcomes[0].event_id), erased]
    )
    assert [o.outcome for o in replay.outcomes] == [Outcome.DUPLICATE, Outcome.REJECTED]
    await copy.close()
    # served with another secret, the copy would refuse nothing: it does not open
    with pytest.raises(ConfigError, match="another server secret"):
        await Neo4jStore.open(neo4j_uri(), neo4j_settings(), erasure_key=OTHER_KEY)
    wiped = await Neo4jStore.open(neo4j_uri(), neo4j_settings(), erasure_key=OTHER_KEY, clear=True)
    assert (await wiped.erasures()).hashes == []
    await wiped.close()
    await source.close()


async def test_a_salted_erasure_record_is_rekeyed_and_no_salt_is_kept(
    neo4j_store: Neo4jStore,
) -> None:
    # a store erased before the keyed hash: sha256(salt:key) beside the salt
    salt = "0f" * 16
    salted = hashlib.sha256(f"{salt}:email:old@x.com".encode()).hexdigest()
    await run_cypher("MATCH (m:IdgraphMeta) DELETE m")  # old stores had no key fingerprint
    await run_cypher(
        "CREATE (:IdgraphMeta {name: 'erase_salt', value: $salt}) "
        "CREATE (:Erased {hash: $hash, at: datetime()})",
        salt=salt,
        hash=salted,
    )
    store = await Neo4jStore.open(neo4j_uri(), neo4j_settings(), erasure_key=ERASURE_KEY)
    hasher = ErasureHasher(ERASURE_KEY)
    assert await store.erasures() == ErasureRecord([hasher.rekey(salted)], salt)
    graph = IdentityGraph(store, Settings())
    replay = await graph.ingest([event("email:old@x.com")])
    assert [o.outcome for o in replay.outcomes] == [Outcome.REJECTED]

    await graph.ingest([event("email:gone@x.com", "cookie:gone")])
    await graph.forget("email:gone@x.com")
    record = await store.erasures()
    assert sorted(record.hashes) == sorted(
        [hasher.rekey(salted), *(hasher.hash(k) for k in ("cookie:gone", "email:gone@x.com"))]
    )
    meta = "MATCH (m:IdgraphMeta) RETURN m.name AS name ORDER BY name"
    assert [r["name"] for r in await run_cypher(meta)] == [
        "erasure_key_check",
        "legacy_erase_salt",
        "schema_version",
    ]
    await store.close()
    again = await Neo4jStore.open(neo4j_uri(), neo4j_settings(), erasure_key=ERASURE_KEY)
    assert await again.erasures() == record  # re-keying happens once
    await again.close()


async def test_an_erasure_by_another_process_is_refused_by_a_writer_that_saw_none(
    neo4j_store: Neo4jStore,
) -> None:
    """A writer whose last batch found nothing erased sends no key hashes; an erasure
    another process made since is still refused."""
    graph = IdentityGraph(neo4j_store, Settings())
    await graph.ingest([event("email:a@x.com", "cookie:a")])
    other = await Neo4jStore.open(neo4j_uri(), neo4j_settings(), erasure_key=ERASURE_KEY)
    await IdentityGraph(other, Settings()).forget("email:a@x.com")
    await other.close()
    for _ in range(2):
        replay = await graph.ingest([event("email:b@x.com", "cookie:a")])
        assert [o.outcome for o in replay.outcomes] == [Outcome.REJECTED]
    assert await graph.customer_of("email:b@x.com") is None


async def test_a_fresh_database_gives_no_warnings(
    neo4j_store: Neo4jStore, caplog: pytest.LogCaptureFixture
) -> None:
    """The ingest's statements name relationship types and labels that a fresh database
    has not seen yet (BANNED, Erased): that is no cause for a warning to the user."""
    graph = IdentityGraph(neo4j_store, Settings())
    with caplog.at_level("INFO", logger="neo4j"):
        await graph.ingest([event("email:a@x.com", "cookie:a")])
        await graph.ingest([event("email:b@x.com", "cookie:a")])
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == []
    assert await graph.customer_of("email:b@x.com") == await graph.customer_of("email:a@x.com")


async def test_a_store_written_before_segments_gets_the_instants_of_its_trait_dates(
    neo4j_store: Neo4jStore,
) -> None:
    graph = IdentityGraph(neo4j_store, Settings())
    joined = {"joined": "2026-01-01T05:00:00+05:00", "city": "2026-01-01"}
    await graph.ingest([event("email:a@x.com", traits=joined)])
    # As an earlier version left it: no instants, and no schema version.
    await run_cypher("MATCH (t:Trait) REMOVE t.instant")
    await run_cypher("MATCH (m:IdgraphMeta {name: 'schema_version'}) DELETE m")
    names = [p.name for p in DEFAULT_PURPOSES]

    def before_2026(name: str) -> SegmentQuery:
        raw = {"trait": {"name": name, "lte": "2026-01-01T00:00:00Z"}}
        return SegmentQuery(parse_filter(raw, names), DEFAULT_PURPOSES, utcnow())

    assert await neo4j_store.count_segment(before_2026("joined")) == 0
    reopened = await Neo4jStore.open(neo4j_uri(), neo4j_settings(), erasure_key=ERASURE_KEY)
    try:
        assert await reopened.count_segment(before_2026("joined")) == 1
        assert await reopened.count_segment(before_2026("city")) == 0, "a date, not a time"
    finally:
        await reopened.close()


async def test_a_trait_filter_takes_integers_beyond_cypher_s_64_bits(
    neo4j_store: Neo4jStore,
) -> None:
    # Events keep integers to 64 bits; a filter's operands are any JSON integer.
    graph = IdentityGraph(neo4j_store, Settings())
    await graph.ingest([event("email:a@x.com", traits={"points": 2**62})])
    names = [p.name for p in DEFAULT_PURPOSES]
    for body, members in [
        ({"eq": 2**70}, 0),
        ({"gt": 2**64}, 0),
        ({"lt": 2**70}, 1),
        ({"in": [2**70, 2**62]}, 1),
    ]:
        raw = {"trait": {"name": "points", **body}}
        query = SegmentQuery(parse_filter(raw, names), DEFAULT_PURPOSES, utcnow())
        assert await neo4j_store.count_segment(query) == members, body


def test_the_cli_runs_on_neo4j(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    uri = neo4j_uri()
    settings = neo4j_settings()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("IDGRAPH_STORE", uri)
    monkeypatch.setenv("IDGRAPH_NEO4J_USER", settings.user)
    monkeypatch.setenv("IDGRAPH_NEO4J_PASSWORD", settings.password)
    monkeypatch.setenv("IDGRAPH_NEO4J_DATABASE", settings.database)
    sqlite = f"sqlite:///{tmp_path / 'empty.db'}"
    assert main(["--store", sqlite, "export", "--to", uri, "--replace", "--no-progress"]) == 0
    assert main(["init-schema"]) == 0
    assert main(["demo", "--no-progress"]) == 1  # broken lines refused
    assert main(["check"]) == 0
    assert main(["resolve", "email:Alice@Example.com"]) == 0
    assert main(["export", str(tmp_path / "graph.graphml")]) == 0
    assert main(["--store", sqlite, "export", "--to", uri, "--no-progress"]) == 2
    assert "--replace" in capsys.readouterr().err
